package bootstrap

import (
	"context"
	"fmt"
	"net/url"
	"regexp"

	"github.com/openflynn/flynn/controller"
)

// addProvider registers a resource provider in the controller, so that
// `flynn resource add NAME` works on a new cluster. URL names the
// provider's discoverd service and carries its key as the userinfo's
// password, which the controller sends as basic auth:
// "http://:{{postgres-api-key}}@postgres-api.discoverd/databases". The
// step's line shows the URL without the key.
type addProvider struct {
	stepHead
	// Name is the provider's name, e.g. "postgres".
	Name string `json:"name"`
	// URL is where the controller POSTs provision requests.
	URL string `json:"url"`
}

// providerNamePattern is the controller's rule for provider names
// (schema/provider.json).
var providerNamePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

func (a *addProvider) run(ctx context.Context, r *run, _ string) (string, error) {
	if !providerNamePattern.MatchString(a.Name) {
		return "", fmt.Errorf("name %q must match %s", a.Name, providerNamePattern)
	}
	// Checked here, not by the controller, whose refusal would quote the
	// URL with its key.
	u, err := url.Parse(a.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("url %s: want an http(s) URL with a host", controller.RedactURL(a.URL))
	}
	c, err := r.controller(ctx)
	if err != nil {
		return "", err
	}
	p := &controller.Provider{Name: a.Name, URL: a.URL}
	if err := c.CreateProvider(ctx, p); err != nil {
		return "", fmt.Errorf("create provider %s: %w", a.Name, err)
	}
	return a.Name + " " + controller.RedactURL(a.URL), nil
}
