package controller

import "time"

// Formation is how many jobs of each process type of one release of an app
// should run. The scheduler converges running jobs towards formations.
type Formation struct {
	AppID     string         `json:"app"`
	ReleaseID string         `json:"release"`
	Processes map[string]int `json:"processes"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}
