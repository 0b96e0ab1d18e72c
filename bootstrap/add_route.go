package bootstrap

import (
	"context"
	"fmt"

	"github.com/openflynn/flynn/controller"
)

// addRoute adds a route to an app an earlier step recorded: the
// controller's HTTPS domain, gitreceive's TCP port.
type addRoute struct {
	stepHead
	// AppStep is the step that recorded the app the route belongs to.
	AppStep string           `json:"app_step"`
	Route   controller.Route `json:"route"`
}

func (a *addRoute) run(ctx context.Context, r *run, _ string) (string, error) {
	app := r.apps[a.AppStep]
	if app == nil || !app.recorded {
		return "", fmt.Errorf("app_step %q is no earlier step that recorded an app", a.AppStep)
	}
	c, err := r.controller(ctx)
	if err != nil {
		return "", err
	}
	rt := a.Route
	if err := c.CreateRoute(ctx, app.appID, &rt); err != nil {
		return "", fmt.Errorf("create route: %w", err)
	}
	switch rt.Type {
	case controller.RouteTypeTCP:
		return fmt.Sprintf("tcp :%d -> %s", rt.Port, rt.Service), nil
	default:
		tls := ""
		if rt.Certificate != nil {
			tls = " (tls)"
		}
		return fmt.Sprintf("http %s%s -> %s%s", rt.Domain, rt.Path, rt.Service, tls), nil
	}
}
