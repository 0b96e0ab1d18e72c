package client

import (
	"context"
	"net/http"

	"github.com/openflynn/flynn/controller"
)

// CreateApp creates app (a random name when Name is empty) and fills in
// what the controller assigned. When the controller has a default route
// domain (Status), an app that is not a system app gets an HTTP route
// "<name>.<domain>" with it.
func (c *Client) CreateApp(ctx context.Context, app *controller.App) error {
	return c.do(ctx, http.MethodPost, "/apps", app, app)
}

// CreateAppWithoutDefaultRoute is CreateApp for an app that gets no
// default route.
func (c *Client) CreateAppWithoutDefaultRoute(ctx context.Context, app *controller.App) error {
	return c.do(ctx, http.MethodPost, "/apps?default_route=false", app, app)
}

// App returns an app by id or name.
func (c *Client) App(ctx context.Context, idOrName string) (*controller.App, error) {
	var app controller.App
	return &app, c.do(ctx, http.MethodGet, path("apps", idOrName), nil, &app)
}

// Apps lists every app.
func (c *Client) Apps(ctx context.Context) ([]*controller.App, error) {
	return listAll[*controller.App](ctx, c, "/apps")
}

// UpdateApp changes an app's meta or strategy.
func (c *Client) UpdateApp(ctx context.Context, idOrName string, u controller.AppUpdate) (*controller.App, error) {
	var app controller.App
	return &app, c.do(ctx, http.MethodPost, path("apps", idOrName), u, &app)
}

// DeleteApp deletes an app with its formations, routes and resources, and
// returns it as it was.
func (c *Client) DeleteApp(ctx context.Context, idOrName string) (*controller.App, error) {
	var app controller.App
	return &app, c.do(ctx, http.MethodDelete, path("apps", idOrName), nil, &app)
}

// AppRelease returns an app's current release.
func (c *Client) AppRelease(ctx context.Context, app string) (*controller.Release, error) {
	var rel controller.Release
	return &rel, c.do(ctx, http.MethodGet, path("apps", app, "release"), nil, &rel)
}

// SetAppRelease makes releaseID the app's current release, which records a
// deployment; setting the current release again changes nothing.
func (c *Client) SetAppRelease(ctx context.Context, app, releaseID string) (*controller.App, error) {
	var out controller.App
	return &out, c.do(ctx, http.MethodPut, path("apps", app, "release"), controller.AppReleaseRequest{ReleaseID: releaseID}, &out)
}

// PatchRelease makes a new release from the app's current release as the
// controller has it, changed by p, and deploys it: the way to change an
// app's env (or release a build) without undoing a concurrent change. When
// p changes nothing it returns the current release and no deployment.
func (c *Client) PatchRelease(ctx context.Context, app string, p controller.ReleasePatch) (*controller.PatchedRelease, error) {
	var out controller.PatchedRelease
	return &out, c.do(ctx, http.MethodPatch, path("apps", app, "release"), p, &out)
}

// Deploy makes releaseID the app's current release and returns the
// deployment; it fails with precondition_failed when the release is current
// already.
func (c *Client) Deploy(ctx context.Context, app, releaseID string) (*controller.Deployment, error) {
	var d controller.Deployment
	return &d, c.do(ctx, http.MethodPost, path("apps", app, "deploy"), controller.AppReleaseRequest{ReleaseID: releaseID}, &d)
}

// Deployments lists an app's deployments, oldest first.
func (c *Client) Deployments(ctx context.Context, app string) ([]*controller.Deployment, error) {
	return listAll[*controller.Deployment](ctx, c, path("apps", app, "deployments"))
}

// Deployment returns one deployment of an app.
func (c *Client) Deployment(ctx context.Context, app, id string) (*controller.Deployment, error) {
	var d controller.Deployment
	return &d, c.do(ctx, http.MethodGet, path("apps", app, "deployments", id), nil, &d)
}

// UpdateDeployment reports a deployment's progress (the scheduler does).
func (c *Client) UpdateDeployment(ctx context.Context, app, id string, u controller.DeploymentUpdate) (*controller.Deployment, error) {
	var d controller.Deployment
	return &d, c.do(ctx, http.MethodPut, path("apps", app, "deployments", id), u, &d)
}
