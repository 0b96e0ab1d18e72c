// Package router holds the router's own view of its inputs: the routes it
// serves and the backends behind them. It imports only the standard library so
// that the route sources (the controller API, a static file) and the backend
// sources (discoverd, a static file) can all translate into it without the
// router depending on them.
//
// How the router learns its routes: the controller owns the routes table in
// its database. The router never reads that database; it follows the
// controller API instead, with `GET /routes` for the full set and then the
// `GET /events?object_types=route` Server-Sent Events stream, resuming by event
// id after a reconnect (see router/controllerroutes). Every change is applied
// by building a new immutable route table and swapping it in atomically, so a
// change takes effect within the time it takes an event to arrive and open
// connections are never dropped by it.
//
// Backends are the live instances of a route's discoverd service, followed
// through discoverd's watch stream (see router/discoverdbackends).
//
// The proxy itself lives in router/server; cmd/flynn-router wires it up.
package router

import "time"

// Route types.
const (
	TypeHTTP = "http"
	TypeTCP  = "tcp"
)

// Route is one route as the controller stores it (the JSON shape is the
// controller's, see controller.Route).
type Route struct {
	ID      string `json:"id"`
	AppID   string `json:"app,omitempty"`
	Type    string `json:"type"`    // TypeHTTP or TypeTCP
	Service string `json:"service"` // discoverd service whose instances are the backends
	// Domain is, for http routes, an exact host ("example.com") or a wildcard
	// ("*.example.com", which matches any name below example.com but not
	// example.com itself). Matching ignores case.
	Domain string `json:"domain,omitempty"`
	// Path is, for http routes, a path prefix; empty means "/". The longest
	// matching prefix of a host wins, and prefixes match whole segments:
	// "/api" matches "/api" and "/api/x" but not "/apix".
	Path string `json:"path,omitempty"`
	// Sticky pins a client to one backend with a signed cookie.
	Sticky bool `json:"sticky,omitempty"`
	// Certificate is served for Domain to TLS clients that ask for it (SNI).
	Certificate *Certificate `json:"certificate,omitempty"`
	// Port is, for tcp routes, the port the router listens on.
	Port int `json:"port,omitempty"`
	// DrainBackends is accepted for compatibility: the router always drains
	// (a leaving backend gets no new requests and finishes those in flight).
	DrainBackends bool      `json:"drain_backends,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Certificate is a PEM certificate chain and its PEM private key.
type Certificate struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// Route change operations, as the controller names them.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// RouteEvent is one change to the set of routes.
type RouteEvent struct {
	// ID is the controller's event id; it only increases.
	ID int64
	// Op is OpCreate, OpUpdate or OpDelete.
	Op string
	// Route is the route after the change (for OpDelete: before it).
	Route *Route
}

// Backend is one live instance of a service.
type Backend struct {
	// ID identifies the instance within its service.
	ID string `json:"id"`
	// Addr is "host:port".
	Addr string `json:"addr"`
}
