package client

import (
	"context"
	"net/http"

	"github.com/openflynn/flynn/controller"
)

// CreateArtifact creates an artifact and fills in its id and timestamp.
func (c *Client) CreateArtifact(ctx context.Context, a *controller.Artifact) error {
	return c.do(ctx, http.MethodPost, "/artifacts", a, a)
}

// Artifact returns an artifact by id.
func (c *Client) Artifact(ctx context.Context, id string) (*controller.Artifact, error) {
	var a controller.Artifact
	return &a, c.do(ctx, http.MethodGet, path("artifacts", id), nil, &a)
}

// Artifacts lists every artifact.
func (c *Client) Artifacts(ctx context.Context) ([]*controller.Artifact, error) {
	return listAll[*controller.Artifact](ctx, c, "/artifacts")
}

// CreateRelease creates a release of rel.AppID (id or name) and fills in
// its id, version and timestamp.
func (c *Client) CreateRelease(ctx context.Context, rel *controller.Release) error {
	return c.do(ctx, http.MethodPost, path("apps", rel.AppID, "releases"), rel, rel)
}

// Release returns a release by id.
func (c *Client) Release(ctx context.Context, id string) (*controller.Release, error) {
	var rel controller.Release
	return &rel, c.do(ctx, http.MethodGet, path("releases", id), nil, &rel)
}

// AppReleases lists an app's releases, oldest (v1) first.
func (c *Client) AppReleases(ctx context.Context, app string) ([]*controller.Release, error) {
	return listAll[*controller.Release](ctx, c, path("apps", app, "releases"))
}

// Releases lists every release of every app.
func (c *Client) Releases(ctx context.Context) ([]*controller.Release, error) {
	return listAll[*controller.Release](ctx, c, "/releases")
}

// PutFormation sets the process counts of f.AppID and f.ReleaseID.
func (c *Client) PutFormation(ctx context.Context, f *controller.Formation) error {
	return c.do(ctx, http.MethodPut, path("apps", f.AppID, "formations", f.ReleaseID), f, f)
}

// RaiseFormation sets each of f's process counts unless the stored one is
// larger (PUT …?raise=true): a deployment's step, which must not undo a
// scale made while it runs. f becomes the stored formation.
func (c *Client) RaiseFormation(ctx context.Context, f *controller.Formation) error {
	return c.do(ctx, http.MethodPut, path("apps", f.AppID, "formations", f.ReleaseID)+"?raise=true", f, f)
}

// Formation returns the formation of an app and release.
func (c *Client) Formation(ctx context.Context, app, releaseID string) (*controller.Formation, error) {
	var f controller.Formation
	return &f, c.do(ctx, http.MethodGet, path("apps", app, "formations", releaseID), nil, &f)
}

// Formations lists an app's formations.
func (c *Client) Formations(ctx context.Context, app string) ([]*controller.Formation, error) {
	var list []*controller.Formation
	return list, c.do(ctx, http.MethodGet, path("apps", app, "formations"), nil, &list)
}

// AllFormations lists every app's formations (the scheduler's view).
func (c *Client) AllFormations(ctx context.Context) ([]*controller.Formation, error) {
	var list []*controller.Formation
	return list, c.do(ctx, http.MethodGet, "/formations", nil, &list)
}

// DeleteFormation removes the formation of an app and release.
func (c *Client) DeleteFormation(ctx context.Context, app, releaseID string) error {
	return c.do(ctx, http.MethodDelete, path("apps", app, "formations", releaseID), nil, nil)
}
