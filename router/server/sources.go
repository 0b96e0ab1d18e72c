package server

import (
	"context"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/router"
)

// RouteSource is where the router learns its routes: the controller API in
// production (router/controllerroutes), a static file for standalone use
// (router/staticconfig), a fake in tests.
type RouteSource interface {
	// Routes returns every route as of now.
	Routes(ctx context.Context) ([]*controller.Route, error)
	// WatchRoutes streams route changes from the moment it is called on,
	// reconnecting and resuming by itself; the channel closes when ctx ends.
	// The router calls it before Routes, so that no change falls in between.
	WatchRoutes(ctx context.Context) (<-chan router.RouteEvent, error)
}

// BackendSource is where the router learns the live instances of a service:
// discoverd in production (router/discoverdbackends).
type BackendSource interface {
	// WatchBackends sends the complete set of live backends of service, first
	// as soon as it is known and then again on every change. The channel
	// closes when ctx ends.
	WatchBackends(ctx context.Context, service string) (<-chan []router.Backend, error)
}
