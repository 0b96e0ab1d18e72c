package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/openflynn/flynn/controller"
)

// CreateRoute adds route to an app and fills in its id and timestamps.
func (c *Client) CreateRoute(ctx context.Context, app string, route *controller.Route) error {
	return c.do(ctx, http.MethodPost, path("apps", app, "routes"), route, route)
}

// Route returns one route of an app.
func (c *Client) Route(ctx context.Context, app, id string) (*controller.Route, error) {
	var r controller.Route
	return &r, c.do(ctx, http.MethodGet, path("apps", app, "routes", id), nil, &r)
}

// AppRoutes lists an app's routes.
func (c *Client) AppRoutes(ctx context.Context, app string) ([]*controller.Route, error) {
	return listAll[*controller.Route](ctx, c, path("apps", app, "routes"))
}

// Routes lists every route of every app (the router's view).
func (c *Client) Routes(ctx context.Context) ([]*controller.Route, error) {
	return listAll[*controller.Route](ctx, c, "/routes")
}

// UpdateRoute changes a route of an app as u says and returns it.
func (c *Client) UpdateRoute(ctx context.Context, app, id string, u controller.RouteUpdate) (*controller.Route, error) {
	var r controller.Route
	return &r, c.do(ctx, http.MethodPatch, path("apps", app, "routes", id), u, &r)
}

// DeleteRoute removes a route of an app.
func (c *Client) DeleteRoute(ctx context.Context, app, id string) error {
	return c.do(ctx, http.MethodDelete, path("apps", app, "routes", id), nil, nil)
}

// CreateKey adds an SSH public key given in authorized_keys form.
func (c *Client) CreateKey(ctx context.Context, authorizedKey string) (*controller.Key, error) {
	var k controller.Key
	return &k, c.do(ctx, http.MethodPost, "/keys", map[string]string{"key": authorizedKey}, &k)
}

// Key returns a key by id.
func (c *Client) Key(ctx context.Context, id string) (*controller.Key, error) {
	var k controller.Key
	return &k, c.do(ctx, http.MethodGet, path("keys", id), nil, &k)
}

// KeyByFingerprint returns the key with a SHA256 fingerprint ("SHA256:…"),
// or a not_found error.
func (c *Client) KeyByFingerprint(ctx context.Context, fingerprint string) (*controller.Key, error) {
	var list []*controller.Key
	if err := c.do(ctx, http.MethodGet, "/keys?fingerprint="+url.QueryEscape(fingerprint), nil, &list); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, notFound("key")
	}
	return list[0], nil
}

// Keys lists every key.
func (c *Client) Keys(ctx context.Context) ([]*controller.Key, error) {
	return listAll[*controller.Key](ctx, c, "/keys")
}

// DeleteKey removes a key by id.
func (c *Client) DeleteKey(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, path("keys", id), nil, nil)
}

// CreateProvider registers a resource provider.
func (c *Client) CreateProvider(ctx context.Context, p *controller.Provider) error {
	return c.do(ctx, http.MethodPost, "/providers", p, p)
}

// Provider returns a provider by id or name.
func (c *Client) Provider(ctx context.Context, idOrName string) (*controller.Provider, error) {
	var p controller.Provider
	return &p, c.do(ctx, http.MethodGet, path("providers", idOrName), nil, &p)
}

// Providers lists every provider.
func (c *Client) Providers(ctx context.Context) ([]*controller.Provider, error) {
	return listAll[*controller.Provider](ctx, c, "/providers")
}

// ProvisionResource has a provider provision a resource and attaches it to
// req.Apps, each of which gets a new release with the resource's env.
func (c *Client) ProvisionResource(ctx context.Context, provider string, req *controller.ResourceRequest) (*controller.Resource, error) {
	var r controller.Resource
	return &r, c.do(ctx, http.MethodPost, path("providers", provider, "resources"), req, &r)
}

// Resource returns one resource of a provider.
func (c *Client) Resource(ctx context.Context, provider, id string) (*controller.Resource, error) {
	var r controller.Resource
	return &r, c.do(ctx, http.MethodGet, path("providers", provider, "resources", id), nil, &r)
}

// DeleteResource has a resource's provider deprovision it (drop the
// database) and removes it; each app that had it gets a new release
// without its env. It returns the resource as it was.
func (c *Client) DeleteResource(ctx context.Context, provider, id string) (*controller.Resource, error) {
	var r controller.Resource
	return &r, c.do(ctx, http.MethodDelete, path("providers", provider, "resources", id), nil, &r)
}

// ProviderResources lists a provider's resources.
func (c *Client) ProviderResources(ctx context.Context, provider string) ([]*controller.Resource, error) {
	var list []*controller.Resource
	return list, c.do(ctx, http.MethodGet, path("providers", provider, "resources"), nil, &list)
}

// AppResources lists the resources attached to an app.
func (c *Client) AppResources(ctx context.Context, app string) ([]*controller.Resource, error) {
	var list []*controller.Resource
	return list, c.do(ctx, http.MethodGet, path("apps", app, "resources"), nil, &list)
}
