package controller

import "time"

// Deployment statuses.
const (
	DeploymentPending  = "pending"
	DeploymentRunning  = "running"
	DeploymentComplete = "complete"
	DeploymentFailed   = "failed"
)

// Deployment replaces an app's old release with a new one. The controller
// records it when an app's release is set; the scheduler carries it out and
// reports its progress with PUT /apps/:id/deployments/:deployment_id.
type Deployment struct {
	ID           string `json:"id"`
	AppID        string `json:"app"`
	OldReleaseID string `json:"old_release,omitempty"`
	NewReleaseID string `json:"new_release"`
	Strategy     string `json:"strategy"`
	Status       string `json:"status"`
	// Processes is the formation the new release should reach: the old
	// release's.
	Processes  map[string]int `json:"processes,omitempty"`
	Error      string         `json:"error,omitempty"`
	CreatedAt  time.Time      `json:"created_at"`
	FinishedAt *time.Time     `json:"finished_at,omitempty"`
}

// DeploymentUpdate is the scheduler's progress report on a deployment.
type DeploymentUpdate struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}
