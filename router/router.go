// Package router holds the few types that are the router's own. A route is
// the controller's wire type, controller.Route (with controller.Certificate
// and the controller.RouteType* constants): the router reads routes as the
// controller stores them rather than keeping a copy of the type. What is
// the router's own is a route change as a route source delivers it
// (RouteEvent) and a live backend (Backend). Package controller imports only
// the standard library, so this package stays a leaf too.
//
// How the router learns its routes: the controller owns the routes table in
// its database. The router never reads that database; it follows the
// controller API through the controller's Go client (router/controllerroutes
// adapts controller/client to the router's RouteSource): it opens the route
// event stream first, then lists every route, then applies the events that
// follow on top of the list, so a change made while the list was read is not
// missed. The client resumes a dropped stream after the last event it
// delivered by itself. Every change is applied by building a new immutable
// route table and swapping it in atomically, so a change takes effect within
// the time it takes an event to arrive and open connections are never
// dropped by it.
//
// How the router reads a route: an http route's Domain is an exact host
// ("example.com") or a wildcard ("*.example.com", which matches any name
// below example.com but not example.com itself), matched ignoring case; its
// Path is a prefix matched by whole segments ("/api" matches "/api" and
// "/api/x" but not "/apix"), empty meaning "/", and the longest matching
// prefix of a host wins. Sticky pins a client to one backend with a signed
// cookie; Certificate is served to TLS clients that ask for Domain (SNI). A
// tcp route listens on Port. DrainBackends is accepted for compatibility:
// the router always drains (a leaving backend gets no new requests and
// finishes those in flight).
//
// Backends are the live instances of a route's discoverd service, followed
// through discoverd's watch stream (see router/discoverdbackends).
//
// The proxy itself lives in router/server; cmd/flynn-router wires it up.
package router

import "github.com/openflynn/flynn/controller"

// RouteEvent is one change to the set of routes.
type RouteEvent struct {
	// ID is the controller's event id; it only increases.
	ID int64
	// Op is controller.OpCreate, controller.OpUpdate or controller.OpDelete.
	Op string
	// Route is the route after the change (for a delete: before it).
	Route *controller.Route
}

// Backend is one live instance of a service.
type Backend struct {
	// ID identifies the instance within its service.
	ID string `json:"id"`
	// Addr is "host:port".
	Addr string `json:"addr"`
}
