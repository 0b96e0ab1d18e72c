package controller

// Status is what GET /status says of the controller: which build it is
// and the cluster settings a client shows or relies on.
type Status struct {
	// Version is the controller's build (pkg/version): a release
	// ("v1.2.0"), a commit, or "dev".
	Version string `json:"version"`
	// DefaultRouteDomain is the domain under which every app that is
	// not a system app gets an HTTP route when it is created:
	// "<app>.<DefaultRouteDomain>". Empty when apps get none.
	DefaultRouteDomain string `json:"default_route_domain"`
}
