package controller

// JobStats is a running job's use of CPU and memory, as its host reads it
// from the container runtime (the host API's host.JobStats).
type JobStats struct {
	// CPUPercent is the job's recent CPU use in percent of one CPU (200
	// is two CPUs kept busy).
	CPUPercent float64 `json:"cpu_percent"`
	// MemoryBytes is the memory the job uses, without the file cache the
	// kernel can take back.
	MemoryBytes uint64 `json:"memory_bytes"`
	// MemoryLimitBytes is the job's memory limit; 0 when it has none.
	MemoryLimitBytes uint64 `json:"memory_limit_bytes,omitempty"`
}

// JobRunning reports whether a job in state runs: it has a container,
// which has not ended. Only a running job has stats.
func JobRunning(state string) bool {
	return state == JobStateStarting || state == JobStateUp || state == JobStateStopping
}
