package server

import (
	"context"
	"sync"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
)

// JobStatsReader is the optional part of a JobRunner that reads running
// jobs' CPU and memory use from the host running them. Without it, a job
// list asked for with ?stats=true has no stats.
type JobStatsReader interface {
	// JobStats reads the stats of jobIDs, which run on host hostID; a job
	// missing from the answer has none (it ended, or the host could not
	// read it in time).
	JobStats(ctx context.Context, hostID string, jobIDs []string) (map[string]*host.JobStats, error)
}

// jobStatsTimeout bounds each host's answer to a job list with stats: a
// person waits for `flynn ps`, and the jobs of a host that takes longer
// are listed without. A host that has not read a job's stats in the last
// minute reads it twice, a second apart with Docker 20.10.
const jobStatsTimeout = 3 * time.Second

// fillJobStats sets the Stats of the running jobs, asking their hosts all
// at once, each within jobStatsTimeout.
func (s *Server) fillJobStats(ctx context.Context, jobs []*controller.Job) {
	reader, ok := s.opts.Runner.(JobStatsReader)
	if !ok {
		return
	}
	byHost := map[string][]*controller.Job{}
	for _, j := range jobs {
		if !host.JobState(j.State).Running() {
			continue
		}
		if hostID, err := hostOf(j); err == nil {
			byHost[hostID] = append(byHost[hostID], j)
		}
	}
	var wg sync.WaitGroup
	for hostID, onHost := range byHost {
		wg.Go(func() {
			hctx, cancel := context.WithTimeout(ctx, jobStatsTimeout)
			defer cancel()
			ids := make([]string, len(onHost))
			for i, j := range onHost {
				ids[i] = j.ID
			}
			stats, err := reader.JobStats(hctx, hostID, ids)
			if err != nil {
				s.logger.Warn("read job stats", "host.id", hostID, "err", err)
				return
			}
			// Each host's goroutine sets its own jobs' stats alone.
			for _, j := range onHost {
				j.Stats = stats[j.ID]
			}
		})
	}
	wg.Wait()
}
