// Package hostrunner runs the controller's one-off jobs on flynn-host nodes:
// it implements controller/server's JobRunner (and its optional
// JobLogReader, JobStopper, HostLister, HostStatsLister and JobStatsReader) over the host
// API.
//
//	discoverd "flynn-host" ──► GET /host/status on each host ──► fewest active jobs
//	JobSpec ──► hostjob.ForOneOff (no process type in metadata) ──► PUT /host/jobs/:id
//	                                                            or POST /host/attach {job}
//
// Hosts are looked up in discoverd on every run rather than followed with a
// watch: one-off jobs are rare, a lookup is one request, and it keeps the
// runner free of background goroutines. Jobs carry the app and release
// metadata keys but never controller.JobMetaType, which is how the
// scheduler tells its own jobs apart, so it leaves one-off jobs alone.
package hostrunner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/server"
	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/host"
	hostclient "github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// HostService is the discoverd service flynn-host registers in; an
// instance's Addr is its host API and Meta["id"] its host id.
const HostService = "flynn-host"

// Discoverer is the part of the discoverd client the runner uses.
type Discoverer interface {
	Instances(ctx context.Context, service string) ([]*discoverd.Instance, error)
}

// Runner places one-off jobs on the least-loaded host.
type Runner struct {
	disc          Discoverer
	key           string
	log           *slog.Logger
	statusTimeout time.Duration
}

var (
	_ server.JobRunner    = (*Runner)(nil)
	_ server.JobLogReader = (*Runner)(nil)
)

// New returns a runner that finds hosts through d and calls their APIs
// with clusterKey.
func New(d Discoverer, clusterKey string, logger *slog.Logger) *Runner {
	if logger == nil {
		logger = slog.Default()
	}
	return &Runner{disc: d, key: clusterKey, log: logger.With("part", "hostrunner"), statusTimeout: 5 * time.Second}
}

// hostRef is one live host.
type hostRef struct {
	id     string
	client *hostclient.Client
}

// hosts returns the live hosts from discoverd.
func (r *Runner) hosts(ctx context.Context) ([]hostRef, error) {
	insts, err := r.disc.Instances(ctx, HostService)
	if err != nil && !httpjson.IsNotFound(err) {
		return nil, fmt.Errorf("find hosts: %w", err)
	}
	var refs []hostRef
	for _, inst := range insts {
		if id := inst.Meta["id"]; id != "" {
			refs = append(refs, hostRef{id: id, client: hostclient.New("http://"+inst.Addr, r.key)})
		}
	}
	if len(refs) == 0 {
		return nil, &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: "no flynn-host is registered in discoverd", Retry: true}
	}
	return refs, nil
}

// host returns the live host with id.
func (r *Runner) host(ctx context.Context, id string) (*hostclient.Client, error) {
	refs, err := r.hosts(ctx)
	if err != nil {
		return nil, err
	}
	for _, h := range refs {
		if h.id == id {
			return h.client, nil
		}
	}
	return nil, &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: fmt.Sprintf("host %s is not registered in discoverd", id), Retry: true}
}

// pickHost returns the host running the fewest active jobs; hosts that do
// not answer within statusTimeout are passed over. Ties go to the lowest
// host id so that placement is predictable.
func (r *Runner) pickHost(ctx context.Context) (hostRef, error) {
	refs, err := r.hosts(ctx)
	if err != nil {
		return hostRef{}, err
	}
	loads := make([]int, len(refs))
	errs := make([]error, len(refs))
	var wg sync.WaitGroup
	for i, h := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, r.statusTimeout)
			defer cancel()
			st, err := h.client.Status(sctx)
			if err != nil {
				errs[i] = err
				return
			}
			loads[i] = activeJobs(st)
		}()
	}
	wg.Wait()
	best := -1
	order := make([]int, len(refs))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return refs[order[a]].id < refs[order[b]].id })
	for _, i := range order {
		if errs[i] != nil {
			r.log.Warn("host status failed; skipping the host", "host.id", refs[i].id, "err", errs[i])
			continue
		}
		if best < 0 || loads[i] < loads[best] {
			best = i
		}
	}
	if best < 0 {
		return hostRef{}, &httpjson.Error{Code: httpjson.CodeServiceUnavailable,
			Message: fmt.Sprintf("none of %d hosts answered: %v", len(refs), errors.Join(errs...)), Retry: true}
	}
	return refs[best], nil
}

// activeJobs counts the jobs that have not ended.
func activeJobs(st *host.HostStatus) int {
	n := 0
	for state, count := range st.Jobs {
		if !state.Terminal() {
			n += count
		}
	}
	return n
}

// RunJob starts spec on the least-loaded host.
func (r *Runner) RunJob(ctx context.Context, spec *server.JobSpec) (*controller.Job, error) {
	h, err := r.pickHost(ctx)
	if err != nil {
		return nil, err
	}
	job := spec.HostJob(h.id)
	aj, err := h.client.AddJob(ctx, job)
	if err != nil {
		return nil, fmt.Errorf("host %s: add job: %w", h.id, err)
	}
	r.log.Info("one-off job placed", "job.id", job.ID, "host.id", h.id, "app.id", spec.Job.AppID)
	return controllerJob(aj, h.id), nil
}

// controllerJob reports a host job as the controller records it.
func controllerJob(aj *host.ActiveJob, hostID string) *controller.Job {
	j := &controller.Job{ID: aj.Job.ID, HostID: hostID, State: string(aj.State), ExitStatus: aj.ExitStatus, Args: aj.Job.Config.Args}
	if aj.HostID != "" {
		j.HostID = aj.HostID
	}
	if !aj.StartedAt.IsZero() {
		t := aj.StartedAt
		j.StartedAt = &t
	}
	if !aj.EndedAt.IsZero() {
		t := aj.EndedAt
		j.EndedAt = &t
	}
	if j.State == "" {
		j.State = controller.JobStatePending
	}
	return j
}
