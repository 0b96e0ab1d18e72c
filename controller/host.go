package controller

import "time"

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
	// Stats is what the host's running jobs use, in a list asked for
	// with ?stats=true (GET /hosts?stats=true), when the host answered
	// its status and its jobs' stats in time; nil otherwise.
	Stats *HostStats `json:"stats,omitempty"`
}

// HostStats is the summed CPU and memory use of a host's running jobs, as
// the host reads each from its container runtime (host.JobStats). It is
// what the jobs use, not the node: the host's own daemons and anything
// else on the machine are not in it.
type HostStats struct {
	// CPUPercent is the sum of the jobs' CPU use, in percent of one CPU
	// (200 is two CPUs kept busy).
	CPUPercent float64 `json:"cpu_percent"`
	// MemoryBytes is the sum of the jobs' memory use, without the file
	// cache the kernel can take back.
	MemoryBytes uint64 `json:"memory_bytes"`
	// Jobs is how many jobs had stats: those running whose stats the host
	// could read. A job without is in neither sum.
	Jobs int `json:"jobs"`
	// Time is when the controller had the host's answer.
	Time time.Time `json:"time"`
}
