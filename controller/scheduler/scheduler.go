// Package scheduler turns the controller's formations into running jobs on
// flynn-host hosts and keeps them so. It is the flynn-scheduler binary's
// whole logic.
//
//	host event streams ─> a follower per host ─> view: each host's jobs, Current,
//	                      (stream, list, events)   Stale or Blind (hosts.go)
//	                                                  │
//	controller events ─┐                              v
//	host set (discoverd)├─> round: Snapshot ─> Compute ─> Plan ─┬─> per host, concurrently:
//	tick (1 s) ────────┘   (view, formations)  (pure)           │   StopJob, AddJob (act.go)
//	                                                            └─> controller.PutJob (states)
//
// The scheduler keeps its view of each host's jobs from that host's event
// stream: a follower opens the stream, then lists the host's jobs once, then
// applies the events; a round plans from the view without asking any host.
// Jobs carry their app, release and type in their metadata (hostjob), so a
// restarted scheduler rebuilds the view from the hosts and neither loses nor
// duplicates jobs. A host whose stream is down keeps its last known jobs but
// is not acted on until it is back (see Compute for what that means for
// planning); a host that leaves discoverd leaves the view, and its jobs are
// replaced elsewhere. Only the leader of the "flynn-scheduler" discoverd
// service acts, and only while discoverd confirms its registration in time
// (RunLeader fences it); the others wait. Deployments (deploy.go) move
// formations step by step and let the rounds start and stop the jobs. A
// job of an app that is not a system app gets the cluster's build
// settings (controller.BuildEnv) under its own env, as read in the round
// that starts it; a change to them restarts no running job.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/hostjob"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// Controller is what the scheduler needs of the controller API;
// *controller/client.Client implements it.
type Controller interface {
	AllFormations(ctx context.Context) ([]*controller.Formation, error)
	Formation(ctx context.Context, app, releaseID string) (*controller.Formation, error)
	PutFormation(ctx context.Context, f *controller.Formation) error
	RaiseFormation(ctx context.Context, f *controller.Formation) error
	DeleteFormation(ctx context.Context, app, releaseID string) error
	App(ctx context.Context, idOrName string) (*controller.App, error)
	Apps(ctx context.Context) ([]*controller.App, error)
	Deployments(ctx context.Context, app string) ([]*controller.Deployment, error)
	Release(ctx context.Context, id string) (*controller.Release, error)
	Artifact(ctx context.Context, id string) (*controller.Artifact, error)
	BuildEnv(ctx context.Context) (*controller.BuildEnv, error)
	PutJob(ctx context.Context, j *controller.Job) error
	StreamEvents(ctx context.Context, filter controller.EventFilter) (<-chan *controller.Event, error)
	UpdateDeployment(ctx context.Context, app, id string, u controller.DeploymentUpdate) (*controller.Deployment, error)
}

// HostClient is what the scheduler needs of one host's API: following its
// jobs and changing them. DiscoverdCluster's hosts implement it over
// *host/client.Client. Values must be comparable (pointers, typically):
// a host whose HostClient changes is followed afresh.
type HostClient interface {
	JobFeed
	JobControl
}

// JobFeed follows one host's jobs. The scheduler opens the event stream
// first and lists second, so that no change between the two is missed.
type JobFeed interface {
	// Events opens the stream of the host's job events from now on; it
	// returns once the stream is open. The stream ends when ctx ends.
	Events(ctx context.Context) (EventStream, error)
	// ListJobs returns the host's jobs.
	ListJobs(ctx context.Context) ([]*host.ActiveJob, error)
}

// EventStream is an open stream of one host's job events;
// *host/client.EventStream implements it.
type EventStream interface {
	// Next returns the next event, or an error when the stream ends.
	Next() (*host.Event, error)
	Close() error
}

// JobControl starts and stops jobs on one host.
type JobControl interface {
	AddJob(ctx context.Context, job *host.Job) (*host.ActiveJob, error)
	StopJob(ctx context.Context, id string) (*host.ActiveJob, error)
}

// Cluster tells which hosts are alive.
type Cluster interface {
	// Hosts returns the live hosts by id.
	Hosts() map[string]HostClient
	// Changed receives a value whenever the host set changes.
	Changed() <-chan struct{}
}

// Config tunes a Scheduler; zero values take the documented defaults.
type Config struct {
	// Interval is the time between rounds when nothing triggers one;
	// default 1 s.
	Interval time.Duration
	// BackoffBase and BackoffMax bound the delay before a crashed process
	// type starts again: base doubles with each crash; defaults 500 ms, 30 s.
	BackoffBase, BackoffMax time.Duration
	// BackoffReset is how long a job must stay up for its type's crash
	// count to reset; default 10 s.
	BackoffReset time.Duration
	// DeployTimeout bounds how long a deployment step waits for a new job to
	// come up before rolling back; default 60 s.
	DeployTimeout time.Duration
	// HostTimeout bounds a listing of one host's jobs and one host's share
	// of a round (its stops, then its starts); hosts are acted on
	// concurrently, so a slow host delays a round by at most this, and a
	// host that overruns it is followed afresh. Default 30 s: more than a
	// job's default stop grace (host.DefaultStopGrace).
	HostTimeout time.Duration
	// HostStops is how many of one host's stops run at once. A stop
	// waits for the job's end (its stop grace), so stops in turn would
	// take a grace each, and a host with a few to stop would overrun
	// HostTimeout before its starts; default 8.
	HostStops int
	// Metrics counts rounds, jobs and deployments; nil counts them in a
	// registry nobody reads.
	Metrics *Metrics
}

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 500 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.BackoffReset <= 0 {
		c.BackoffReset = 10 * time.Second
	}
	if c.DeployTimeout <= 0 {
		c.DeployTimeout = 60 * time.Second
	}
	if c.HostTimeout <= 0 {
		c.HostTimeout = 30 * time.Second
	}
	if c.HostStops <= 0 {
		c.HostStops = 8
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(prometheus.NewRegistry())
	}
}

// Scheduler converges formations into jobs.
type Scheduler struct {
	cfg     Config
	ctrl    Controller
	cluster Cluster
	log     *slog.Logger

	trigger chan struct{}

	// viewMu guards views and every hostView's jobs and knowledge: the
	// followers write them, rounds read them. The map itself changes only
	// in rounds (syncHosts).
	viewMu    sync.Mutex
	views     map[string]*hostView
	followers sync.WaitGroup
	// lost holds the live jobs of hosts that left, for the next round to
	// report failed; guarded by viewMu.
	lost []*host.ActiveJob

	// Owned by the round loop.
	releases  map[string]*controller.Release
	artifacts map[string]*controller.Artifact
	// apps caches what a job needs of its app: its name and whether it
	// is a system app, neither of which changes.
	apps     map[string]*controller.App
	reported map[string]host.JobState
	// buildEnv is the cluster's build settings as last read (nil: never),
	// which the jobs of apps that are not system apps get; buildEnvRead
	// says whether this round has read them (see roundBuildEnv).
	buildEnv     *controller.BuildEnv
	buildEnvRead bool
	// crashCounted holds the crashed jobs whose crash counted towards
	// their type's backoff: once each, whether or not the controller has
	// heard of it yet (a report that fails is tried every round).
	crashCounted map[string]bool
	upSince      map[string]time.Time
	backoff      map[Key]*backoffState
	// formations is the last list the controller gave: a round plans from
	// it while the controller cannot answer, so that what the controller
	// itself needs (its Postgres, discoverd, the controller) is started
	// again after a crash; nobody can change formations meanwhile.
	formations []*controller.Formation
	// formationsErr is the listing's error while it fails, so that the
	// failure is logged once, not every round.
	formationsErr string

	// refused are the starts hosts refused lately, for the deployments'
	// view (see refuse).
	refused []refusedStart

	// jobs is the last round's view, read by deployments.
	mu      sync.Mutex
	jobs    map[Key][]*Job
	roundCh chan struct{} // closed and replaced after each round
	// startHolds are keys no round may start jobs of, set by deployments
	// of exclusive types (see swap); guarded by mu. A zero time holds
	// until it is set; a set time holds for rounds whose formations were
	// listed before it.
	startHolds map[Key]time.Time
}

type backoffState struct {
	crashes   int
	notBefore time.Time
}

// New returns a Scheduler; Run starts it.
func New(cfg Config, ctrl Controller, cluster Cluster, logger *slog.Logger) *Scheduler {
	cfg.defaults()
	return &Scheduler{
		cfg: cfg, ctrl: ctrl, cluster: cluster, log: logger,
		trigger:   make(chan struct{}, 1),
		views:     map[string]*hostView{},
		releases:  map[string]*controller.Release{},
		artifacts: map[string]*controller.Artifact{},
		apps:      map[string]*controller.App{},
		reported:  map[string]host.JobState{},

		crashCounted: map[string]bool{},
		upSince:      map[string]time.Time{},
		backoff:      map[Key]*backoffState{},
		roundCh:      make(chan struct{}),
		startHolds:   map[Key]time.Time{},
	}
}

// Trigger asks for a round soon.
func (s *Scheduler) Trigger() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Run schedules until ctx ends. The caller runs it only while this
// scheduler leads (see RunLeader), so Metrics' is_leader is 1 while it
// runs. It returns after every goroutine it started (host followers,
// deployments) has returned.
func (s *Scheduler) Run(ctx context.Context) error {
	s.cfg.Metrics.leading(true)
	defer s.cfg.Metrics.leading(false)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup // deployments
	defer s.stopFollowing()
	defer wg.Wait()
	defer cancel()
	events, err := s.followEvents(ctx)
	if err != nil {
		return err
	}
	// One deployment per app at a time, each deployment once: later ones
	// for a busy app wait in its queue.
	var deployMu sync.Mutex
	started := map[string]bool{}
	queued := map[string][]*controller.Deployment{}
	startDeploy := func(d *controller.Deployment) {
		deployMu.Lock()
		if started[d.ID] {
			deployMu.Unlock()
			return
		}
		started[d.ID] = true
		if q, busy := queued[d.AppID]; busy {
			queued[d.AppID] = append(q, d)
			deployMu.Unlock()
			return
		}
		queued[d.AppID] = nil
		deployMu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next := d; next != nil; {
				s.deploy(ctx, next)
				s.Trigger()
				deployMu.Lock()
				next = nil
				if q := queued[d.AppID]; len(q) > 0 {
					next, queued[d.AppID] = q[0], q[1:]
				} else {
					delete(queued, d.AppID)
				}
				deployMu.Unlock()
			}
		}()
	}
	// Deployments created before the stream opened (while no scheduler
	// led, or a previous leader died in the middle of one) go on now.
	for _, d := range s.unfinishedDeployments(ctx) {
		startDeploy(d)
	}

	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	for {
		start := time.Now()
		err := s.round(ctx)
		s.cfg.Metrics.round(time.Since(start))
		if err != nil && ctx.Err() == nil {
			s.log.Warn("round failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.trigger:
		case <-s.cluster.Changed():
		case e, ok := <-events:
			if !ok {
				return nil
			}
			s.log.Debug("controller event", "type", e.ObjectType, "op", e.Op, "object.id", e.ObjectID)
			if d := pendingDeployment(e); d != nil {
				startDeploy(d)
			}
		}
	}
}

// unfinishedDeployments lists the deployments that are pending or were
// left running.
func (s *Scheduler) unfinishedDeployments(ctx context.Context) []*controller.Deployment {
	apps, err := s.ctrl.Apps(ctx)
	if err != nil {
		s.log.Warn("list apps for unfinished deployments failed", "err", err)
		return nil
	}
	var out []*controller.Deployment
	for _, app := range apps {
		ds, err := s.ctrl.Deployments(ctx, app.ID)
		if err != nil {
			s.log.Warn("list deployments failed", "app.id", app.ID, "err", err)
			continue
		}
		for _, d := range ds {
			if d.Status == controller.DeploymentPending || d.Status == controller.DeploymentRunning {
				out = append(out, d)
			}
		}
	}
	return out
}

// followEvents opens the controller's event stream, waiting for the
// controller while it does not answer (it may start after the scheduler).
func (s *Scheduler) followEvents(ctx context.Context) (<-chan *controller.Event, error) {
	filter := controller.EventFilter{ObjectTypes: []string{"formation", "app", "release", "deployment"}}
	for delay := 200 * time.Millisecond; ; delay = min(delay*2, 5*time.Second) {
		events, err := s.ctrl.StreamEvents(ctx, filter)
		if err == nil {
			return events, nil
		}
		s.log.Warn("cannot follow controller events yet; retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// round makes one pass: snapshot, plan, act. It asks no host anything:
// the followers keep the view.
func (s *Scheduler) round(ctx context.Context) error {
	now := time.Now()
	s.buildEnvRead = false
	s.syncHosts(ctx)
	views := s.snapshot(now)
	snap := &Snapshot{Held: map[Key]bool{}}
	all := map[Key][]*Job{}
	seen := map[string]bool{}
	for _, v := range views {
		h := &Host{ID: v.view.id, Knowledge: v.knowledge}
		for _, aj := range v.jobs {
			j, oneOff := jobOf(v.view.id, aj)
			if j == nil {
				continue // no app's job: a component bootstrap started by hand
			}
			seen[j.ID] = true
			// One-off jobs (flynn run, builds) are not planned, but their
			// states are reported like any job's, so they go through up
			// and down with their exit status.
			s.observe(ctx, now, j, aj)
			if oneOff {
				continue
			}
			h.Jobs = append(h.Jobs, j)
			all[j.Key] = append(all[j.Key], j)
		}
		snap.Hosts = append(snap.Hosts, h)
	}
	for _, r := range s.refused {
		all[r.job.Key] = append(all[r.job.Key], r.job)
	}
	s.publish(all)
	// The live jobs of hosts that left are reported failed, once.
	s.viewMu.Lock()
	lost := s.lost
	s.lost = nil
	s.viewMu.Unlock()
	for _, aj := range lost {
		if j, _ := jobOf(aj.HostID, aj); j != nil {
			s.observe(ctx, now, j, aj)
		}
	}
	// A job the view no longer holds (its host left, or it ended long
	// ago) is gone for good.
	for id := range s.reported {
		if !seen[id] {
			delete(s.reported, id)
			delete(s.upSince, id)
			delete(s.crashCounted, id)
		}
	}
	for id := range s.crashCounted {
		if !seen[id] {
			delete(s.crashCounted, id)
		}
	}

	listedAt := time.Now()
	formations, err := s.ctrl.AllFormations(ctx)
	switch {
	case err == nil:
		if s.formationsErr != "" {
			s.log.Info("formations listed again")
			s.formationsErr = ""
		}
		s.formations = formations
	case s.formations == nil || ctx.Err() != nil:
		return fmt.Errorf("list formations: %w", err)
	default:
		if s.formationsErr == "" {
			s.log.Warn("cannot list formations; planning from the last list until the controller answers", "err", err)
		}
		s.formationsErr = err.Error()
		formations = s.formations
	}
	for _, f := range formations {
		rel, err := s.release(ctx, f.ReleaseID)
		if err != nil {
			s.log.Warn("formation's release unreadable", "app.id", f.AppID, "release.id", f.ReleaseID, "err", err)
			continue
		}
		if s.formationsErr == "" && len(f.Processes) > 0 {
			// What starting a job of f needs is read now, while the
			// controller answers, so that the job can be started again
			// when it cannot (its own Postgres crashed). Both are cached.
			if _, err := s.artifact(ctx, rel.ArtifactID); err != nil {
				s.log.Debug("formation's artifact unreadable", "release.id", rel.ID, "err", err)
			}
			app, err := s.app(ctx, f.AppID)
			if err != nil {
				s.log.Debug("formation's app unreadable", "app.id", f.AppID, "err", err)
			}
			if app != nil && !app.System && s.buildEnv == nil {
				if err := s.readBuildEnv(ctx); err != nil {
					s.log.Debug("cluster build env unreadable", "err", err)
				}
			}
		}
		for _, typ := range slices.Sorted(maps.Keys(f.Processes)) {
			count := f.Processes[typ]
			pt, ok := rel.Processes[typ]
			if !ok || count <= 0 {
				continue
			}
			key := Key{AppID: f.AppID, ReleaseID: f.ReleaseID, Type: typ}
			snap.Wants = append(snap.Wants, Want{Key: key, Count: count, Omni: pt.Omni})
			if s.startsHeld(key, listedAt, s.formationsErr == "") {
				snap.Held[key] = true
			}
			if b := s.backoff[key]; b != nil && now.Before(b.notBefore) {
				snap.Held[key] = true // the next tick looks again
			}
		}
	}

	plan := Compute(snap)
	s.act(ctx, now, views, plan)
	if !plan.Empty() {
		s.Trigger() // look again soon to report the new jobs' states
	}
	return nil
}

// holdStarts stops rounds from starting jobs of key until releaseStarts.
func (s *Scheduler) holdStarts(key Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startHolds[key] = time.Time{}
}

// releaseStarts ends a hold of holdStarts for the rounds that list the
// formations from now on: a round that listed them before may have seen
// them half changed.
func (s *Scheduler) releaseStarts(key Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.startHolds[key]; ok {
		s.startHolds[key] = time.Now()
	}
}

// startsHeld reports whether a round whose formations were listed at
// listedAt (fresh: from the controller, not the last list kept) may not
// start jobs of key, and forgets a released hold once a fresh list is
// past it.
func (s *Scheduler) startsHeld(key Key, listedAt time.Time, fresh bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.startHolds[key]
	switch {
	case !ok:
		return false
	case !until.IsZero() && fresh && listedAt.After(until):
		delete(s.startHolds, key)
		return false
	}
	return true
}

// jobOf returns the scheduler's view of a host job and whether it is a
// one-off run, or nil when the job belongs to no app (a component job
// started outside any app).
func jobOf(hostID string, aj *host.ActiveJob) (*Job, bool) {
	o, ok := hostjob.OwnerOf(aj.Job)
	if !ok {
		return nil, false
	}
	return &Job{
		ID:         aj.Job.ID,
		HostID:     hostID,
		State:      aj.State,
		ExitStatus: aj.ExitStatus,
		Key:        Key{AppID: o.AppID, ReleaseID: o.ReleaseID, Type: o.Type},
	}, o.OneOff()
}

// observe reports state changes to the controller and keeps the crash
// backoff.
func (s *Scheduler) observe(ctx context.Context, now time.Time, j *Job, aj *host.ActiveJob) {
	if j.State == host.StateUp {
		if _, ok := s.upSince[j.ID]; !ok {
			s.upSince[j.ID] = now
		}
		if b := s.backoff[j.Key]; b != nil && now.Sub(s.upSince[j.ID]) >= s.cfg.BackoffReset {
			delete(s.backoff, j.Key)
		}
	}
	if s.reported[j.ID] == j.State {
		return
	}
	if (j.State == host.StateCrashed || j.State == host.StateFailed) && !s.reported[j.ID].Terminal() && !s.crashCounted[j.ID] && j.Key.Type != "" {
		s.crashCounted[j.ID] = true
		s.crashed(j.Key, now)
		attrs := []any{"job.id", j.ID, "app.id", j.Key.AppID, "release.id", j.Key.ReleaseID, "type", j.Key.Type, "host.id", j.HostID, "error", aj.Error}
		if aj.ExitStatus != nil {
			attrs = append(attrs, "exit_status", *aj.ExitStatus)
		}
		s.log.Warn("job crashed", attrs...)
	}
	cj := &controller.Job{
		ID: j.ID, AppID: j.Key.AppID, ReleaseID: j.Key.ReleaseID, Type: j.Key.Type,
		HostID: j.HostID, State: string(j.State), ExitStatus: aj.ExitStatus, Args: aj.Job.Config.Args,
	}
	if j.State == host.StateFailed {
		cj.Error = aj.Error
	}
	if !aj.StartedAt.IsZero() {
		t := aj.StartedAt
		cj.StartedAt = &t
	}
	if !aj.EndedAt.IsZero() {
		t := aj.EndedAt
		cj.EndedAt = &t
	}
	if err := s.ctrl.PutJob(ctx, cj); err != nil {
		if httpjson.IsNotFound(err) {
			// The app or release was deleted while the job ran: there is
			// nothing to report to, now or at the next tick.
			s.log.Info("job of a deleted app or release; its state is not reported", "job.id", j.ID, "app.id", j.Key.AppID, "state", j.State)
			s.reported[j.ID] = j.State
			return
		}
		s.log.Warn("report job state failed", "job.id", j.ID, "state", j.State, "err", err)
		return
	}
	s.reported[j.ID] = j.State
	if j.State.Terminal() {
		delete(s.upSince, j.ID)
		delete(s.crashCounted, j.ID)
	}
}

func (s *Scheduler) crashed(key Key, now time.Time) {
	b := s.backoff[key]
	if b == nil {
		b = &backoffState{}
		s.backoff[key] = b
	}
	b.crashes++
	delay := s.cfg.BackoffBase << min(b.crashes-1, 16)
	if delay > s.cfg.BackoffMax || delay <= 0 {
		delay = s.cfg.BackoffMax
	}
	b.notBefore = now.Add(delay)
}

func (s *Scheduler) release(ctx context.Context, id string) (*controller.Release, error) {
	if r, ok := s.releases[id]; ok {
		return r, nil // releases are immutable
	}
	r, err := s.ctrl.Release(ctx, id)
	if err != nil {
		return nil, err
	}
	s.releases[id] = r
	return r, nil
}

func (s *Scheduler) artifact(ctx context.Context, id string) (*controller.Artifact, error) {
	if a, ok := s.artifacts[id]; ok {
		return a, nil
	}
	a, err := s.ctrl.Artifact(ctx, id)
	if err != nil {
		return nil, err
	}
	s.artifacts[id] = a
	return a, nil
}

func (s *Scheduler) app(ctx context.Context, id string) (*controller.App, error) {
	if a, ok := s.apps[id]; ok {
		return a, nil
	}
	a, err := s.ctrl.App(ctx, id)
	if err != nil {
		return nil, err
	}
	s.apps[id] = &controller.App{ID: a.ID, Name: a.Name, System: a.System}
	return s.apps[id], nil
}

// roundBuildEnv returns the cluster's build settings for a job of an app
// that is not a system app. They are read once in a round that starts
// such a job, after the round's formations were listed: a change to them
// committed before a change to a formation reaches the jobs started for
// the latter. Jobs already running keep what they started with (a restart
// picks up a change). While the controller does not answer, the last read
// serves; a job cannot start before one succeeded (the round prefetches
// them while the controller answers, with the apps and artifacts).
func (s *Scheduler) roundBuildEnv(ctx context.Context) (*controller.BuildEnv, error) {
	if !s.buildEnvRead && s.formationsErr == "" {
		s.buildEnvRead = true // once a round, even when it fails
		if err := s.readBuildEnv(ctx); err != nil {
			s.log.Warn("cannot read the cluster's build env; starting jobs with the last read", "err", err)
		}
	}
	if s.buildEnv == nil {
		return nil, errors.New("the cluster's build env was never read")
	}
	return s.buildEnv, nil
}

// readBuildEnv reads the cluster's build settings into s.buildEnv.
func (s *Scheduler) readBuildEnv(ctx context.Context) error {
	be, err := s.ctrl.BuildEnv(ctx)
	if httpjson.IsNotFound(err) {
		be, err = &controller.BuildEnv{}, nil // a controller older than build settings has none
	}
	if err != nil {
		return fmt.Errorf("read the cluster's build env: %w", err)
	}
	s.buildEnv = be
	return nil
}

// publish records a round's jobs for deployments and wakes their waits.
func (s *Scheduler) publish(jobs map[Key][]*Job) {
	s.mu.Lock()
	s.jobs = jobs
	close(s.roundCh)
	s.roundCh = make(chan struct{})
	s.mu.Unlock()
}

// jobsOf returns the jobs of key seen in the last round, and a channel
// closed after the next round.
func (s *Scheduler) jobsOf(key Key) ([]*Job, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.jobs[key]), s.roundCh
}
