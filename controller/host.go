package controller

// Host states in GET /hosts.
const (
	// HostUp is a host that answered its status.
	HostUp = "up"
	// HostUnreachable is a host registered in discoverd that did not
	// answer in time: its flynn-host is down, or its node is, but its
	// registration has not expired yet.
	HostUnreachable = "unreachable"
)

// Host is a node of the cluster as GET /hosts lists it: a flynn-host
// registered in discoverd, and what it said of itself.
type Host struct {
	// ID is the host's id.
	ID string `json:"id"`
	// Addr is the node's address: the address its jobs are reached on,
	// or, for an unreachable host, the address it registered from.
	Addr string `json:"addr"`
	// Status is HostUp or HostUnreachable.
	Status string `json:"status"`
	// Jobs counts the host's jobs that have not ended (0 when
	// unreachable).
	Jobs int `json:"jobs"`
	// Error says why an unreachable host is.
	Error string `json:"error,omitempty"`
}
