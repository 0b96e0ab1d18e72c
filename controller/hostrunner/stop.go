package hostrunner

import (
	"context"
	"fmt"

	"github.com/openflynn/flynn/controller/server"
)

var _ server.JobStopper = (*Runner)(nil)

// StopJob stops job jobID on host hostID and waits for the host to confirm.
func (r *Runner) StopJob(ctx context.Context, hostID, jobID string) error {
	hc, err := r.host(ctx, hostID)
	if err != nil {
		return err
	}
	if _, err := hc.StopJob(ctx, jobID); err != nil {
		return fmt.Errorf("host %s: stop job: %w", hostID, err)
	}
	return nil
}
