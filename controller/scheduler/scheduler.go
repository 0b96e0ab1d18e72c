// Package scheduler turns the controller's formations into running jobs on
// flynn-host hosts and keeps them so. It is the flynn-scheduler binary's
// whole logic.
//
//	controller events ─┐                      ┌─> host.AddJob / StopJob
//	host set (discoverd)├─> round: Snapshot ─> Compute ─> Plan ─┤
//	tick (1 s) ────────┘      (hosts' jobs,   (pure)            └─> controller.PutJob (states)
//	                           formations)
//
// Every round rebuilds its view from the hosts (jobs carry their app,
// release and type in their metadata), so a restarted scheduler neither
// loses nor duplicates jobs. Only the leader of the "flynn-scheduler"
// discoverd service acts; the others wait. Deployments (deploy.go) move
// formations step by step and let the rounds start and stop the jobs.
package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/random"
)

// Controller is what the scheduler needs of the controller API;
// *controller/client.Client implements it.
type Controller interface {
	AllFormations(ctx context.Context) ([]*controller.Formation, error)
	Formation(ctx context.Context, app, releaseID string) (*controller.Formation, error)
	PutFormation(ctx context.Context, f *controller.Formation) error
	DeleteFormation(ctx context.Context, app, releaseID string) error
	App(ctx context.Context, idOrName string) (*controller.App, error)
	Apps(ctx context.Context) ([]*controller.App, error)
	Deployments(ctx context.Context, app string) ([]*controller.Deployment, error)
	Release(ctx context.Context, id string) (*controller.Release, error)
	Artifact(ctx context.Context, id string) (*controller.Artifact, error)
	PutJob(ctx context.Context, j *controller.Job) error
	StreamEvents(ctx context.Context, filter controller.EventFilter) (<-chan *controller.Event, error)
	UpdateDeployment(ctx context.Context, app, id string, u controller.DeploymentUpdate) (*controller.Deployment, error)
}

// HostClient is what the scheduler needs of one host's API;
// *host/client.Client implements it.
type HostClient interface {
	ListJobs(ctx context.Context) ([]*host.ActiveJob, error)
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
}

// Scheduler converges formations into jobs.
type Scheduler struct {
	cfg     Config
	ctrl    Controller
	cluster Cluster
	log     *slog.Logger

	trigger chan struct{}

	// Owned by the round loop.
	releases  map[string]*controller.Release
	artifacts map[string]*controller.Artifact
	appNames  map[string]string
	reported  map[string]host.JobState
	upSince   map[string]time.Time
	backoff   map[Key]*backoffState

	// jobs is the last round's view, read by deployments.
	mu      sync.Mutex
	jobs    map[Key][]*Job
	roundCh chan struct{} // closed and replaced after each round
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
		releases:  map[string]*controller.Release{},
		artifacts: map[string]*controller.Artifact{},
		appNames:  map[string]string{},
		reported:  map[string]host.JobState{},
		upSince:   map[string]time.Time{},
		backoff:   map[Key]*backoffState{},
		roundCh:   make(chan struct{}),
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
// scheduler leads (see RunLeader).
func (s *Scheduler) Run(ctx context.Context) error {
	events, err := s.followEvents(ctx)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
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
		if err := s.round(ctx); err != nil && ctx.Err() == nil {
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

// round makes one pass: snapshot, plan, act.
func (s *Scheduler) round(ctx context.Context) error {
	now := time.Now()
	hosts := s.cluster.Hosts()
	snap := &Snapshot{Held: map[Key]bool{}}
	all := map[Key][]*Job{}
	seen := map[string]bool{}
	for id, hc := range hosts {
		listCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		jobs, err := hc.ListJobs(listCtx)
		cancel()
		if err != nil {
			// Planning without this host's jobs would start duplicates of
			// them elsewhere; wait until it answers or leaves discoverd.
			return fmt.Errorf("list jobs on host %s: %w", id, err)
		}
		h := &Host{ID: id}
		for _, aj := range jobs {
			j := jobOf(id, aj)
			if j == nil {
				// One-off jobs (flynn run, builds) are not planned, but
				// their states are reported like any job's, so they go
				// through up and down with their exit status.
				if j := oneOffOf(id, aj); j != nil {
					seen[j.ID] = true
					s.observe(ctx, now, j, aj)
				}
				continue
			}
			seen[j.ID] = true
			h.Jobs = append(h.Jobs, j)
			all[j.Key] = append(all[j.Key], j)
			s.observe(ctx, now, j, aj)
		}
		snap.Hosts = append(snap.Hosts, h)
	}
	s.publish(all)
	// Every host answered: a job none of them lists is gone for good.
	for id := range s.reported {
		if !seen[id] {
			delete(s.reported, id)
			delete(s.upSince, id)
		}
	}

	formations, err := s.ctrl.AllFormations(ctx)
	if err != nil {
		return fmt.Errorf("list formations: %w", err)
	}
	for _, f := range formations {
		rel, err := s.release(ctx, f.ReleaseID)
		if err != nil {
			s.log.Warn("formation's release unreadable", "app.id", f.AppID, "release.id", f.ReleaseID, "err", err)
			continue
		}
		for _, typ := range slices.Sorted(maps.Keys(f.Processes)) {
			count := f.Processes[typ]
			pt, ok := rel.Processes[typ]
			if !ok || count <= 0 {
				continue
			}
			key := Key{AppID: f.AppID, ReleaseID: f.ReleaseID, Type: typ}
			snap.Wants = append(snap.Wants, Want{Key: key, Count: count, Omni: pt.Omni})
			if b := s.backoff[key]; b != nil && now.Before(b.notBefore) {
				snap.Held[key] = true // the next tick looks again
			}
		}
	}

	plan := Compute(snap)
	for _, st := range plan.Stops {
		j := st.Job
		s.log.Info("stopping job", "job.id", j.ID, "app.id", j.Key.AppID, "release.id", j.Key.ReleaseID, "type", j.Key.Type, "host.id", j.HostID, "reason", st.Reason)
		if _, err := hosts[j.HostID].StopJob(ctx, j.ID); err != nil {
			s.log.Warn("stop job failed", "job.id", j.ID, "host.id", j.HostID, "err", err)
		}
	}
	for _, st := range plan.Starts {
		if err := s.start(ctx, hosts[st.HostID], st); err != nil {
			s.log.Warn("start job failed", "app.id", st.Key.AppID, "release.id", st.Key.ReleaseID, "type", st.Key.Type, "host.id", st.HostID, "err", err)
			s.crashed(st.Key, now)
		}
	}
	if !plan.Empty() {
		s.Trigger() // look again soon to report the new jobs' states
	}
	return nil
}

// jobOf returns the scheduler's view of a host job, or nil when the job is
// not an app's process (a one-off job, a component bootstrap started).
func jobOf(hostID string, aj *host.ActiveJob) *Job {
	if aj.Job == nil {
		return nil
	}
	m := aj.Job.Metadata
	if m[controller.JobMetaAppID] == "" || m[controller.JobMetaReleaseID] == "" || m[controller.JobMetaType] == "" {
		return nil
	}
	return &Job{
		ID:         aj.Job.ID,
		HostID:     hostID,
		State:      aj.State,
		ExitStatus: aj.ExitStatus,
		Key:        Key{AppID: m[controller.JobMetaAppID], ReleaseID: m[controller.JobMetaReleaseID], Type: m[controller.JobMetaType]},
	}
}

// oneOffOf returns the scheduler's view of a one-off job of an app (a job
// with the app's metadata but no process type), or nil.
func oneOffOf(hostID string, aj *host.ActiveJob) *Job {
	if aj.Job == nil {
		return nil
	}
	m := aj.Job.Metadata
	if m[controller.JobMetaAppID] == "" || m[controller.JobMetaReleaseID] == "" || m[controller.JobMetaType] != "" {
		return nil
	}
	return &Job{
		ID:         aj.Job.ID,
		HostID:     hostID,
		State:      aj.State,
		ExitStatus: aj.ExitStatus,
		Key:        Key{AppID: m[controller.JobMetaAppID], ReleaseID: m[controller.JobMetaReleaseID]},
	}
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
	if (j.State == host.StateCrashed || j.State == host.StateFailed) && !s.reported[j.ID].Terminal() && j.Key.Type != "" {
		s.crashed(j.Key, now)
		s.log.Warn("job crashed", "job.id", j.ID, "app.id", j.Key.AppID, "release.id", j.Key.ReleaseID, "type", j.Key.Type, "host.id", j.HostID, "exit_status", aj.ExitStatus, "error", aj.Error)
	}
	cj := &controller.Job{
		ID: j.ID, AppID: j.Key.AppID, ReleaseID: j.Key.ReleaseID, Type: j.Key.Type,
		HostID: j.HostID, State: string(j.State), ExitStatus: aj.ExitStatus, Args: aj.Job.Config.Args,
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
		s.log.Warn("report job state failed", "job.id", j.ID, "state", j.State, "err", err)
		return
	}
	s.reported[j.ID] = j.State
	if j.State.Terminal() {
		delete(s.upSince, j.ID)
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

func (s *Scheduler) appName(ctx context.Context, id string) (string, error) {
	if n, ok := s.appNames[id]; ok {
		return n, nil
	}
	app, err := s.ctrl.App(ctx, id)
	if err != nil {
		return "", err
	}
	s.appNames[id] = app.Name
	return app.Name, nil
}

// start places one job of st.Key on its host.
func (s *Scheduler) start(ctx context.Context, hc HostClient, st Start) error {
	rel, err := s.release(ctx, st.Key.ReleaseID)
	if err != nil {
		return err
	}
	art, err := s.artifact(ctx, rel.ArtifactID)
	if err != nil {
		return err
	}
	name, err := s.appName(ctx, st.Key.AppID)
	if err != nil {
		return err
	}
	job := JobFor(st.HostID, name, rel, art, st.Key.Type)
	s.log.Info("starting job", "job.id", job.ID, "app.id", st.Key.AppID, "app", name, "release.id", st.Key.ReleaseID, "type", st.Key.Type, "host.id", st.HostID)
	_, err = hc.AddJob(ctx, job)
	return err
}

// JobFor builds the host job for one process of a release. A "web"
// process without ports gets one HTTP port registered in discoverd as
// "<app>-web", the service its routes point at; any other process with a
// Service registers its first port there.
func JobFor(hostID, appName string, rel *controller.Release, art *controller.Artifact, typ string) *host.Job {
	pt := rel.Processes[typ]
	env := map[string]string{}
	maps.Copy(env, rel.Env)
	maps.Copy(env, pt.Env)
	env["FLYNN_APP_ID"] = rel.AppID
	env["FLYNN_APP_NAME"] = appName
	env["FLYNN_RELEASE_ID"] = rel.ID
	env["FLYNN_PROCESS_TYPE"] = typ
	id := hostID + "-" + random.UUID()
	env["FLYNN_JOB_ID"] = id

	service := pt.Service
	ports := pt.Ports
	if typ == "web" && len(ports) == 0 {
		ports = []controller.Port{{Proto: "http"}}
		if service == "" {
			service = appName + "-web"
		}
	}
	var hostPorts []host.Port
	for i, p := range ports {
		hp := host.Port{Port: p.Port, Proto: p.Proto}
		if hp.Proto != "http" {
			hp.Proto = "tcp"
		}
		if i == 0 {
			hp.Service = service
		}
		hostPorts = append(hostPorts, hp)
	}
	var res host.Resources
	if r := pt.Resources; r != nil {
		res.Memory = r.Memory
		res.CPUShares = r.CPU * 1024 / 1000
		res.Pids = r.MaxProcs
	}
	var mounts []host.Mount
	for _, v := range pt.Volumes {
		mounts = append(mounts, host.Mount{Type: host.MountVolume, Source: v.Name, Target: v.Target})
	}
	return &host.Job{
		ID:       id,
		Artifact: art.URI,
		Config: host.JobConfig{
			Args:       pt.Cmd,
			Env:        env,
			Ports:      hostPorts,
			Mounts:     mounts,
			Resources:  res,
			Persistent: pt.Persistent,
		},
		Metadata: map[string]string{
			controller.JobMetaAppID:     rel.AppID,
			controller.JobMetaAppName:   appName,
			controller.JobMetaReleaseID: rel.ID,
			controller.JobMetaType:      typ,
			"flynn.release-version":     strconv.Itoa(rel.Version),
		},
	}
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
