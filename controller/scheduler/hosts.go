package scheduler

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/openflynn/flynn/host"
)

// The view of each host's jobs, and the followers that keep it.
//
// A follower opens the host's event stream, then lists the host's jobs and
// replaces its part of the view with the list, then applies each event
// (which carries the job after the change) as it comes. The stream is open
// before the list is taken, so every change after the list arrives as an
// event; changes between the stream's opening and the list arrive too, and
// may be older than the list. The list carries no event id to tell them
// apart, so a job's state is merged by its rank instead: a job's states
// only move forward (pending, starting, up, stopping, ended), and an event
// that would move a job back is one the list already includes. When the
// stream ends (the host restarted, the network broke, the host dropped a
// slow reader), the host turns Stale and the follower starts over.

const (
	// followMinDelay and followMaxDelay bound the wait before a follower
	// tries a host again; it doubles after each failure to list the host.
	followMinDelay = 100 * time.Millisecond
	followMaxDelay = 5 * time.Second
	// finishedRetention is how long the view keeps a job after it ended
	// (and its end was reported): the host forgets old finished jobs
	// without an event, so the view must forget them by itself. It is
	// long enough for deployments to see a crash and for reports.
	finishedRetention = time.Minute
)

// hostView is what the scheduler knows of one host.
type hostView struct {
	id     string
	client HostClient
	stop   context.CancelFunc // ends its follower

	// Guarded by Scheduler.viewMu.
	knowledge Knowledge
	jobs      map[string]*viewJob
	reconnect context.CancelFunc // ends the follower's current stream; nil between streams
}

// viewJob is one job in a host's view.
type viewJob struct {
	aj *host.ActiveJob // never changed once stored: replaced whole
	// ended is when the view first held the job ended, by the
	// scheduler's clock (hosts' clocks may differ).
	ended time.Time
}

// hostSnapshot is one host's part of the view at the start of a round.
type hostSnapshot struct {
	view      *hostView
	knowledge Knowledge
	jobs      []*host.ActiveJob // oldest first
}

// syncHosts follows the cluster's hosts: a new host (or one whose client
// changed) gets a follower, and a host that left loses its follower and
// leaves the view with its jobs, so that the next plan replaces them.
func (s *Scheduler) syncHosts(ctx context.Context) {
	live := s.cluster.Hosts()
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	for id, v := range s.views {
		if hc, ok := live[id]; !ok || hc != v.client {
			v.stop()
			delete(s.views, id)
			s.log.Info("host left; its jobs leave the view", "host.id", id, "jobs", len(v.jobs))
			if !ok {
				// The host is gone from the cluster, and its jobs with it:
				// the next round reports those that were live as failed,
				// so that they do not stay "up" in the controller.
				for _, vj := range v.jobs {
					if !vj.aj.State.Terminal() {
						lost := *vj.aj
						lost.HostID, lost.State, lost.Error, lost.EndedAt = id, host.StateFailed, "its host left the cluster", time.Now().UTC()
						s.lost = append(s.lost, &lost)
					}
				}
			}
		}
	}
	for id, hc := range live {
		if _, ok := s.views[id]; ok {
			continue
		}
		fctx, stop := context.WithCancel(ctx)
		v := &hostView{id: id, client: hc, stop: stop, knowledge: Blind, jobs: map[string]*viewJob{}}
		s.views[id] = v
		s.followers.Add(1)
		go func() {
			defer s.followers.Done()
			s.follow(fctx, v)
		}()
	}
}

// stopFollowing ends every follower, waits for them, and empties the view,
// so that a later Run starts from the hosts again.
func (s *Scheduler) stopFollowing() {
	s.viewMu.Lock()
	for _, v := range s.views {
		v.stop()
	}
	s.views = map[string]*hostView{}
	s.viewMu.Unlock()
	s.followers.Wait()
}

// follow keeps v's jobs current until ctx ends.
func (s *Scheduler) follow(ctx context.Context, v *hostView) {
	log := s.log.With("host.id", v.id)
	delay := followMinDelay
	for {
		if s.followOnce(ctx, log, v) {
			delay = followMinDelay
		} else {
			delay = min(delay*2, followMaxDelay)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// followOnce opens v's stream, lists its jobs and applies its events until
// the stream ends. It reports whether it got as far as the list.
func (s *Scheduler) followOnce(parent context.Context, log *slog.Logger, v *hostView) (listed bool) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	s.viewMu.Lock()
	v.reconnect = cancel
	s.viewMu.Unlock()
	defer func() {
		s.viewMu.Lock()
		if v.knowledge == Current {
			v.knowledge = Stale
		}
		v.reconnect = nil
		s.viewMu.Unlock()
		if listed {
			s.Trigger()
		}
	}()

	// A host that does not answer must not keep its follower waiting for
	// ever: opening the stream gets HostTimeout, as the list does.
	opening := time.AfterFunc(s.cfg.HostTimeout, cancel)
	stream, err := v.client.Events(ctx)
	if !opening.Stop() { // it fired, and ended ctx
		if err == nil {
			stream.Close()
		}
		err = fmt.Errorf("open event stream: no answer within %s", s.cfg.HostTimeout)
	}
	if err != nil {
		if parent.Err() == nil {
			log.Warn("cannot follow host's job events; retrying", "err", err)
		}
		return false
	}
	defer stream.Close()
	lctx, lcancel := context.WithTimeout(ctx, s.cfg.HostTimeout)
	jobs, err := v.client.ListJobs(lctx)
	lcancel()
	if err != nil {
		if parent.Err() == nil {
			log.Warn("cannot list host's jobs; retrying", "err", err)
		}
		return false
	}
	s.resetJobs(v, jobs, time.Now())
	log.Debug("following host", "jobs", len(jobs))
	s.Trigger()

	var last uint64
	for {
		ev, err := stream.Next()
		if err != nil {
			if parent.Err() == nil {
				log.Warn("host's job event stream ended; following it afresh", "err", err)
			}
			return true
		}
		if ev.ID <= last {
			// Within one stream ids only grow; anything else means the
			// view cannot be trusted: list again.
			log.Warn("host's job events out of order; following it afresh", "event.id", ev.ID, "last", last)
			return true
		}
		last = ev.ID
		if ev.Job != nil && ev.Job.Job != nil {
			s.mergeJob(v, ev.Job, time.Now())
			s.Trigger()
		}
	}
}

// refollow makes v's follower list the host again, and makes the host
// Stale at once, before the next round plans: the host overran a call, so
// its stream may be dead without having ended.
func (s *Scheduler) refollow(v *hostView) {
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	if v.knowledge == Current {
		v.knowledge = Stale
	}
	if v.reconnect != nil {
		v.reconnect()
	}
}

// resetJobs replaces v's jobs with a fresh list of them and makes v Current.
func (s *Scheduler) resetJobs(v *hostView, jobs []*host.ActiveJob, now time.Time) {
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	old := v.jobs
	v.jobs = make(map[string]*viewJob, len(jobs))
	for _, aj := range jobs {
		if aj == nil || aj.Job == nil {
			continue
		}
		vj := &viewJob{aj: aj}
		if aj.State.Terminal() {
			vj.ended = now
			if o := old[aj.Job.ID]; o != nil && !o.ended.IsZero() {
				vj.ended = o.ended
			}
		}
		v.jobs[aj.Job.ID] = vj
	}
	v.knowledge = Current
}

// mergeJob records aj (a job after a change: from an event, or from the
// host's answer to a start or stop) unless the view holds a later state of
// it already.
func (s *Scheduler) mergeJob(v *hostView, aj *host.ActiveJob, now time.Time) {
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	id := aj.Job.ID
	cur := v.jobs[id]
	if cur != nil && stateRank(cur.aj.State) > stateRank(aj.State) {
		return
	}
	vj := &viewJob{aj: aj}
	if aj.State.Terminal() {
		vj.ended = now
		if cur != nil && !cur.ended.IsZero() {
			vj.ended = cur.ended
		}
	}
	v.jobs[id] = vj
}

// forgetJob drops a job the host says it does not have.
func (s *Scheduler) forgetJob(v *hostView, id string) {
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	delete(v.jobs, id)
}

// forgetPending drops a job whose start failed if the view holds it as
// pending: the host removes such a job without an event. Should the host
// have started it after all, its events bring it back.
func (s *Scheduler) forgetPending(v *hostView, id string) {
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	if vj := v.jobs[id]; vj != nil && vj.aj.State == host.StatePending {
		delete(v.jobs, id)
	}
}

// stateRank orders a job's states along its life; every ended state ranks
// the same, since a job ends once.
func stateRank(st host.JobState) int {
	switch st {
	case host.StatePending:
		return 0
	case host.StateStarting:
		return 1
	case host.StateUp:
		return 2
	case host.StateStopping:
		return 3
	default:
		return 4
	}
}

// snapshot copies the view for a round, hosts by id and each host's jobs
// oldest first. It first forgets jobs that ended more than
// finishedRetention ago and whose end was reported.
func (s *Scheduler) snapshot(now time.Time) []hostSnapshot {
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	out := make([]hostSnapshot, 0, len(s.views))
	for _, v := range s.views {
		hs := hostSnapshot{view: v, knowledge: v.knowledge, jobs: make([]*host.ActiveJob, 0, len(v.jobs))}
		for id, vj := range v.jobs {
			if !vj.ended.IsZero() && now.Sub(vj.ended) > finishedRetention && s.reported[id] == vj.aj.State {
				delete(v.jobs, id)
				continue
			}
			hs.jobs = append(hs.jobs, vj.aj)
		}
		slices.SortFunc(hs.jobs, func(a, b *host.ActiveJob) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.Job.ID, b.Job.ID))
		})
		out = append(out, hs)
	}
	slices.SortFunc(out, func(a, b hostSnapshot) int { return cmp.Compare(a.view.id, b.view.id) })
	return out
}
