package controller

import "time"

// Route types.
const (
	RouteTypeHTTP = "http"
	RouteTypeTCP  = "tcp"
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
	// Port (tcp) is the listening port on the router.
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
