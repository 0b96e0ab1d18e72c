package controller

import "time"

// Route types.
const (
	RouteTypeHTTP = "http"
	RouteTypeTCP  = "tcp"
)

// TCPRoutePortMin and TCPRoutePortMax bound the router ports of TCP routes
// of apps that are not system apps: the range a node's firewall lets app
// jobs reach on the router, and where the controller picks a port when a
// route names none. System apps' routes may use any port (gitreceive's
// 2222).
const (
	TCPRoutePortMin = 3000
	TCPRoutePortMax = 3999
)

// Route sends traffic that reaches the router to a discoverd service: HTTP
// by domain and path prefix, TCP by port.
type Route struct {
	ID      string `json:"id"`
	AppID   string `json:"app,omitempty"`
	Type    string `json:"type"`    // "http" or "tcp"
	Service string `json:"service"` // discoverd service whose instances are the backends
	// Domain (http) is exact ("example.com") or a wildcard ("*.example.com").
	Domain string `json:"domain,omitempty"`
	// Path (http) is a path prefix, default "/".
	Path string `json:"path,omitempty"`
	// Sticky (http) pins clients to a backend by signed cookie.
	Sticky bool `json:"sticky,omitempty"`
	// Certificate (http) is served for Domain (SNI).
	Certificate *Certificate `json:"certificate,omitempty"`
	// Port (tcp) is the listening port on the router. A non-system app's
	// must lie in TCPRoutePortMin–TCPRoutePortMax, the range the router's
	// node lets app jobs reach; zero asks the controller for a free one
	// there.
	Port          int  `json:"port,omitempty"`
	DrainBackends bool `json:"drain_backends,omitempty"`
	// NoRequestLog turns off the router's lines in the app's log for this
	// route: one per HTTP request, or per TCP connection. A high-traffic
	// app's routes turn them off when they would flood its log (and its
	// drains) or when the app logs its requests itself.
	NoRequestLog bool      `json:"no_request_log,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// RouteUpdate changes a route (PATCH /apps/:id/routes/:route_id); nil
// fields stay as they are. What a route matches and where it sends traffic
// do not change: a route for something else is a new route.
type RouteUpdate struct {
	// NoRequestLog sets Route.NoRequestLog.
	NoRequestLog *bool `json:"no_request_log,omitempty"`
}

// Certificate is a PEM TLS certificate chain and its key.
type Certificate struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}
