package bootstrap

import (
	"context"
	"fmt"

	"github.com/openflynn/flynn/controller"
)

// addAPIKey creates a person's API key in the controller; its secret is
// {{STEP}}, for the cluster-add line. The platform's components use the
// controller key; the people who run the cluster get this key, which may
// do everything but change the platform's (system) apps.
type addAPIKey struct {
	stepHead
	// Name is the key's name, e.g. "admin".
	Name string `json:"name"`
}

func (a *addAPIKey) run(ctx context.Context, r *run, id string) (string, error) {
	if !controller.ValidAPIKeyName(a.Name) {
		return "", fmt.Errorf("name %q must match %s", a.Name, controller.APIKeyNamePattern)
	}
	c, err := r.controller(ctx)
	if err != nil {
		return "", err
	}
	k, err := c.CreateAPIKey(ctx, a.Name)
	if err != nil {
		return "", fmt.Errorf("create API key %s: %w", a.Name, err)
	}
	if k.Secret == "" {
		return "", fmt.Errorf("the controller answered API key %s without its secret", a.Name)
	}
	r.setValues(id, map[string]string{"": k.Secret})
	return a.Name, nil
}
