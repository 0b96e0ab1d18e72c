package hostrunner

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/openflynn/flynn/controller/server"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

var _ server.JobStatsReader = (*Runner)(nil)

// JobStats reads the stats of jobIDs from host hostID, one call a job, all
// at once: the host then reads them from Docker in one tick of its stats
// collector, and reads no other job's. A job that has stopped running is
// left out; so is every job when the host cannot be reached, which is an
// error.
func (r *Runner) JobStats(ctx context.Context, hostID string, jobIDs []string) (map[string]*host.JobStats, error) {
	hc, err := r.host(ctx, hostID)
	if err != nil {
		return nil, err
	}
	var (
		mu   sync.Mutex
		out  = make(map[string]*host.JobStats, len(jobIDs))
		errs []error
		wg   sync.WaitGroup
	)
	for _, id := range jobIDs {
		wg.Go(func() {
			s, err := hc.JobStats(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				out[id] = s
			case httpjson.IsCode(err, httpjson.CodeConflict) || httpjson.IsNotFound(err):
				// Ended since the controller heard of it.
			default:
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if len(out) == 0 && len(errs) > 0 {
		return nil, fmt.Errorf("host %s: job stats: %w", hostID, errors.Join(errs...))
	}
	return out, nil
}
