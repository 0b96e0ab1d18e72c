package hostrunner

import (
	"context"
	"fmt"

	"github.com/openflynn/flynn/controller/server"
	hostclient "github.com/openflynn/flynn/host/client"
)

// JobLog opens the log of job jobID on host hostID.
func (r *Runner) JobLog(ctx context.Context, hostID, jobID string, opts server.JobLogOptions) (server.LogStream, error) {
	hc, err := r.host(ctx, hostID)
	if err != nil {
		return nil, err
	}
	s, err := hc.Log(ctx, jobID, hostclient.LogOptions{Follow: opts.Follow, Tail: opts.Tail})
	if err != nil {
		return nil, fmt.Errorf("host %s: job log: %w", hostID, err)
	}
	return s, nil
}
