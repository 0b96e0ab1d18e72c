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
	Port          int       `json:"port,omitempty"`
	DrainBackends bool      `json:"drain_backends,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Certificate is a PEM TLS certificate chain and its key.
type Certificate struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}
