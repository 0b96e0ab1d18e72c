package scheduler

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/hostjob"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// hostWork is one host's share of a plan.
type hostWork struct {
	view   *hostView
	stops  []Stop
	starts []plannedStart
}

// plannedStart is a start with its host job built.
type plannedStart struct {
	Start
	job *host.Job
}

// act carries out a plan through the host API: each host's stops (up to
// HostStops at once), then its starts, with the hosts concurrently and
// each bounded by HostTimeout, so a slow host neither delays the others'
// actions nor holds up the round for long. What the hosts answer goes into
// the view at once, so the next round counts a new job even before its
// event arrives. A start that fails counts as a crash of its key (backoff).
func (s *Scheduler) act(ctx context.Context, now time.Time, views []hostSnapshot, plan *Plan) {
	work := map[string]*hostWork{}
	forHost := func(id string) *hostWork {
		w := work[id]
		if w == nil {
			w = &hostWork{}
			for _, v := range views {
				if v.view.id == id {
					w.view = v.view
				}
			}
			work[id] = w
		}
		return w
	}
	for _, st := range plan.Stops {
		w := forHost(st.Job.HostID)
		w.stops = append(w.stops, st)
	}
	for _, st := range plan.Starts {
		// Built here, in the round's goroutine, which owns the caches.
		job, err := s.hostJob(ctx, st)
		if err != nil {
			s.log.Warn("start job failed", "app.id", st.Key.AppID, "release.id", st.Key.ReleaseID, "type", st.Key.Type, "host.id", st.HostID, "err", err)
			s.cfg.Metrics.startFailures.Inc()
			s.crashed(st.Key, now)
			continue
		}
		w := forHost(st.HostID)
		w.starts = append(w.starts, plannedStart{Start: st, job: job})
	}

	failed := make(chan *Job, len(plan.Starts))
	var wg sync.WaitGroup
	for _, w := range work {
		if w.view == nil {
			continue // Compute plans only on the snapshot's hosts
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.actOn(ctx, w, failed)
		}()
	}
	wg.Wait()
	close(failed)
	for j := range failed {
		s.crashed(j.Key, now)
		s.refuse(j, now)
	}
}

// actOn carries out one host's share of a plan.
func (s *Scheduler) actOn(ctx context.Context, w *hostWork, failed chan<- *Job) {
	v := w.view
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HostTimeout)
	defer cancel()
	s.stopAll(hctx, v, w.stops)
	for _, st := range w.starts {
		s.log.Info("starting job", "job.id", st.job.ID, "app.id", st.Key.AppID, "app", st.job.Metadata[controller.JobMetaAppName], "release.id", st.Key.ReleaseID, "type", st.Key.Type, "host.id", v.id)
		aj, err := v.client.AddJob(hctx, st.job)
		if err != nil {
			s.log.Warn("start job failed", "job.id", st.job.ID, "app.id", st.Key.AppID, "release.id", st.Key.ReleaseID, "type", st.Key.Type, "host.id", v.id, "err", err)
			// A relist taken while the host tried may hold the job as
			// pending, and a failed start removes it without an event.
			s.forgetPending(v, st.job.ID)
			s.cfg.Metrics.startFailures.Inc()
			failed <- s.reportFailedStart(ctx, v.id, st, err)
			continue
		}
		s.cfg.Metrics.started.Inc()
		if aj == nil || aj.Job == nil {
			continue // its event brings it
		}
		s.mergeJob(v, aj, time.Now())
	}
	if errors.Is(hctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		// A host that does not answer in time may have a dead stream that
		// has not ended: list it again, and leave it alone meanwhile.
		s.log.Warn("host overran its share of the round; following it afresh", "host.id", v.id, "timeout", s.cfg.HostTimeout)
		s.refollow(v)
	}
}

// reportFailedStart records a job its host refused to start as failed,
// with the host's reason, so that whoever follows the app's deployment
// or scale (flynn release add with an image the host lacks, say) learns
// why rather than only that nothing came up. The host never had the
// job, so no event of its will. It returns the job, for the deployments'
// view (refuse).
func (s *Scheduler) reportFailedStart(ctx context.Context, hostID string, st plannedStart, startErr error) *Job {
	now := time.Now().UTC()
	reason := startErr.Error()
	if he := (*httpjson.Error)(nil); errors.As(startErr, &he) {
		reason = he.Message // the host's words, without its error code
	}
	if len(reason) > maxStartError {
		reason = reason[:maxStartError]
	}
	cj := &controller.Job{
		ID: st.job.ID, AppID: st.Key.AppID, ReleaseID: st.Key.ReleaseID, Type: st.Key.Type, HostID: hostID,
		State: string(host.StateFailed), Error: reason, Args: st.job.Config.Args, EndedAt: &now,
	}
	if err := s.ctrl.PutJob(ctx, cj); err != nil {
		s.log.Warn("report failed start", "job.id", st.job.ID, "err", err)
	}
	return &Job{ID: st.job.ID, HostID: hostID, Key: st.Key, State: host.StateFailed, Error: reason}
}

// refusedKept is how long a refused start stays in the deployments' view:
// a deployment that began before it counts it; later ones see it as
// earlier and ignore it.
const refusedKept = 10 * time.Minute

// refuse adds a job its host refused to start to the view deployments
// read (published with each round's jobs), where it counts as a crash: a
// deployment of an image no host has fails at once, with the host's
// reason, instead of waiting out its timeout.
func (s *Scheduler) refuse(j *Job, now time.Time) {
	s.refused = slices.DeleteFunc(s.refused, func(r refusedStart) bool { return now.Sub(r.at) > refusedKept })
	s.refused = append(s.refused, refusedStart{job: j, at: now})
}

// refusedStart is a refused job in the deployments' view, since at.
type refusedStart struct {
	job *Job
	at  time.Time
}

// maxStartError bounds the reason a failed start is recorded with (the
// job schema's bound).
const maxStartError = 4096

// stopAll stops one host's jobs, HostStops at a time, and returns once
// every stop begun has returned. Stops not begun when ctx ends are left to
// a later round.
func (s *Scheduler) stopAll(ctx context.Context, v *hostView, stops []Stop) {
	slots := make(chan struct{}, s.cfg.HostStops)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, st := range stops {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			s.stop(ctx, v, st)
		}()
	}
}

// stop stops one job and records the host's answer in the view.
func (s *Scheduler) stop(ctx context.Context, v *hostView, st Stop) {
	j := st.Job
	s.log.Info("stopping job", "job.id", j.ID, "app.id", j.Key.AppID, "release.id", j.Key.ReleaseID, "type", j.Key.Type, "host.id", v.id, "reason", st.Reason)
	aj, err := v.client.StopJob(ctx, j.ID)
	switch {
	case err == nil:
		s.cfg.Metrics.stopped.Inc()
		s.mergeJob(v, aj, time.Now())
	case httpjson.IsNotFound(err):
		s.forgetJob(v, j.ID) // the host forgot it: so does the view
	default:
		s.log.Warn("stop job failed", "job.id", j.ID, "host.id", v.id, "err", err)
	}
}

// hostJob builds the host job of one planned start, with the cluster's
// build settings unless its app is a system app.
func (s *Scheduler) hostJob(ctx context.Context, st Start) (*host.Job, error) {
	rel, err := s.release(ctx, st.Key.ReleaseID)
	if err != nil {
		return nil, err
	}
	art, err := s.artifact(ctx, rel.ArtifactID)
	if err != nil {
		return nil, err
	}
	app, err := s.app(ctx, st.Key.AppID)
	if err != nil {
		return nil, err
	}
	var be *controller.BuildEnv
	if !app.System {
		if be, err = s.roundBuildEnv(ctx); err != nil {
			return nil, err
		}
	}
	return hostjob.ForAppProcess(st.HostID, app, rel, art, st.Key.Type, be), nil
}
