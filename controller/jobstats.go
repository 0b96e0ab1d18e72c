package controller

// JobRunning reports whether a job in state runs: it has a container,
// which has not ended. Only a running job has stats.
func JobRunning(state string) bool {
	return state == JobStateStarting || state == JobStateUp || state == JobStateStopping
}
