package hostrunner

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/server"
	"github.com/openflynn/flynn/host"
	hostclient "github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/pkg/httpjson"
)

var (
	_ server.HostLister      = (*Runner)(nil)
	_ server.HostStatsLister = (*Runner)(nil)
)

// listTimeout bounds each host's calls when listing hosts: a person
// waits for the list, and a host that takes longer is as good as gone.
const listTimeout = 2 * time.Second

// Hosts lists every host registered in discoverd, asking each for its
// status at once; one that does not answer within listTimeout is listed
// as unreachable, with the address it registered from.
func (r *Runner) Hosts(ctx context.Context) ([]*controller.Host, error) {
	return r.listHosts(ctx, false)
}

// HostsWithStats is Hosts with each reachable host's Stats: what its
// running jobs use, read with one call (host's GET /host/jobs?stats=true)
// alongside the status call and within the same listTimeout. A host whose
// stats do not come in time is listed, up, without them: the list matters
// more than the numbers. A host that has not read its jobs' stats in the
// last minute may need most of listTimeout to read them afresh.
func (r *Runner) HostsWithStats(ctx context.Context) ([]*controller.Host, error) {
	return r.listHosts(ctx, true)
}

// listHosts is Hosts, and HostsWithStats when withStats is set.
func (r *Runner) listHosts(ctx context.Context, withStats bool) ([]*controller.Host, error) {
	insts, err := r.disc.Instances(ctx, HostService)
	if err != nil && !httpjson.IsNotFound(err) {
		return nil, fmt.Errorf("find hosts: %w", err)
	}
	hosts := make([]*controller.Host, 0, len(insts))
	var wg sync.WaitGroup
	for _, inst := range insts {
		id := inst.Meta["id"]
		if id == "" {
			continue
		}
		addr, _, err := net.SplitHostPort(inst.Addr)
		if err != nil {
			addr = inst.Addr
		}
		h := &controller.Host{ID: id, Addr: addr, Status: controller.HostUnreachable}
		hosts = append(hosts, h)
		c := hostclient.New("http://"+inst.Addr, r.key)
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, listTimeout)
			defer cancel()
			// The stats call runs beside the status call rather than
			// after it, so that each has the whole listTimeout.
			var (
				stats     *controller.HostStats
				statsErr  error
				statsDone sync.WaitGroup
			)
			if withStats {
				statsDone.Go(func() {
					var jobs []*host.ActiveJob
					if jobs, statsErr = c.ListJobsWithStats(sctx); statsErr == nil {
						stats = sumJobStats(jobs, time.Now())
					}
				})
			}
			st, err := c.Status(sctx)
			statsDone.Wait()
			if err != nil {
				h.Error = err.Error()
				return
			}
			if statsErr != nil {
				// Said only of a host that is up: an unreachable one
				// already says why in its Error.
				r.log.Warn("read host's job stats", "host.id", id, "err", statsErr)
			}
			h.Status, h.Jobs, h.Stats = controller.HostUp, activeJobs(st), stats
			if st.ExternalIP != "" {
				h.Addr = st.ExternalIP
			}
		})
	}
	wg.Wait()
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].ID < hosts[j].ID })
	return hosts, nil
}

// sumJobStats sums the stats of a host's jobs, read at time at: only the
// jobs the host gave stats, which are those running whose stats it could
// read. A host without any gives zero sums, not nil: it answered.
func sumJobStats(jobs []*host.ActiveJob, at time.Time) *controller.HostStats {
	s := &controller.HostStats{Time: at}
	for _, j := range jobs {
		if j == nil || j.Stats == nil {
			continue
		}
		s.CPUPercent += j.Stats.CPUPercent
		s.MemoryBytes += j.Stats.MemoryBytes
		s.Jobs++
	}
	return s
}
