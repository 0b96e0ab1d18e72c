package client

import (
	"context"

	"github.com/openflynn/flynn/controller"
)

// JobsWithStats lists an app's jobs, oldest first (only those that have
// not ended when active), each running one with its CPU and memory use
// (Job.Stats) as its host reads it now; the jobs of a host that does not
// answer within a few seconds have none.
func (c *Client) JobsWithStats(ctx context.Context, app string, active bool) ([]*controller.Job, error) {
	q := "?stats=true"
	if active {
		q += "&active=true"
	}
	return listAll[*controller.Job](ctx, c, path("apps", app, "jobs")+q)
}
