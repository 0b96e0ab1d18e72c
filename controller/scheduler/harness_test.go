package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/controllertest"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/pgtest"
	"github.com/openflynn/flynn/pkg/testdeps"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeHost is an in-memory host with the host API's event stream: jobs
// start at once (starting, then up), except jobs of the artifact "crash",
// which crash at once. Tests break it in the ways a real host breaks: its
// streams drop, it refuses new ones, or it stops answering altogether.
type fakeHost struct {
	id string

	mu     sync.Mutex
	jobs   map[string]*host.ActiveJob
	order  []string // job ids in start order
	adds   int
	lists  int
	events []string // "start <release> <type>" / "stop <release> <type>"
	// global, when set, records every host's events in one order.
	global *eventLog

	nextEvent uint64
	streams   map[*fakeStream]bool
	// refuse, when set, fails every Events and ListJobs call.
	refuse error
	// hung makes every call wait until its ctx ends (or resume closes)
	// and every stream go silent, as a host that stopped answering.
	hung   bool
	resume chan struct{}
	// afterList, when set, runs once ListJobs has taken its list (without
	// the lock), before it returns: a change there comes after the list,
	// so a follower learns of it only from its stream.
	afterList func()
	// stopHold, when set, holds every stop until it is closed (or the
	// stop's ctx ends), as a job's stop grace does; stopping counts the
	// stops held at the moment, maxStopping the most at once.
	stopHold              chan struct{}
	stopping, maxStopping int
}

// eventLog is the order of starts and stops over all hosts of a cluster.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

func (h *fakeHost) record(e string) {
	h.events = append(h.events, e)
	if h.global != nil {
		h.global.add(e)
	}
}

func newFakeHost(id string) *fakeHost {
	return &fakeHost{id: id, jobs: map[string]*host.ActiveJob{}, streams: map[*fakeStream]bool{}}
}

var _ HostClient = (*fakeHost)(nil)

// waitLocked blocks, with h.mu released, while the host is hung.
func (h *fakeHost) waitLocked(ctx context.Context) error {
	for h.hung {
		resume := h.resume
		h.mu.Unlock()
		select {
		case <-ctx.Done():
			h.mu.Lock()
			return ctx.Err()
		case <-resume:
		}
		h.mu.Lock()
	}
	return nil
}

// emitLocked sends job id's current state to every stream; a stream too
// far behind is dropped, as the daemon drops slow readers.
func (h *fakeHost) emitLocked(id string) {
	h.nextEvent++
	if h.hung {
		return // a host that stopped answering sends nothing
	}
	j := *h.jobs[id]
	ev := &host.Event{ID: h.nextEvent, JobID: id, State: j.State, Job: &j}
	for st := range h.streams {
		select {
		case st.ch <- ev:
		default:
			h.dropLocked(st)
		}
	}
}

func (h *fakeHost) dropLocked(st *fakeStream) {
	delete(h.streams, st)
	close(st.dropped)
}

// Events opens a stream of the host's job events.
func (h *fakeHost) Events(ctx context.Context) (EventStream, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.waitLocked(ctx); err != nil {
		return nil, err
	}
	if h.refuse != nil {
		return nil, h.refuse
	}
	st := &fakeStream{host: h, ctx: ctx, ch: make(chan *host.Event, 1024), dropped: make(chan struct{})}
	h.streams[st] = true
	return st, nil
}

// fakeStream is one open event stream of a fakeHost.
type fakeStream struct {
	host    *fakeHost
	ctx     context.Context
	ch      chan *host.Event
	dropped chan struct{}
}

var errDropped = errors.New("fake host: stream dropped")

func (s *fakeStream) Next() (*host.Event, error) {
	select {
	case <-s.dropped:
		return nil, errDropped
	default:
	}
	select {
	case ev := <-s.ch:
		return ev, nil
	case <-s.dropped:
		return nil, errDropped
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
}

func (s *fakeStream) Close() error {
	s.host.mu.Lock()
	defer s.host.mu.Unlock()
	if s.host.streams[s] {
		s.host.dropLocked(s)
	}
	return nil
}

func (h *fakeHost) ListJobs(ctx context.Context) ([]*host.ActiveJob, error) {
	h.mu.Lock()
	if err := h.waitLocked(ctx); err != nil {
		h.mu.Unlock()
		return nil, err
	}
	if h.refuse != nil {
		h.mu.Unlock()
		return nil, h.refuse
	}
	h.lists++
	var out []*host.ActiveJob
	for _, id := range h.order {
		j := *h.jobs[id]
		out = append(out, &j)
	}
	hook := h.afterList
	h.mu.Unlock()
	if hook != nil {
		hook()
	}
	return out, nil
}

func (h *fakeHost) AddJob(ctx context.Context, job *host.Job) (*host.ActiveJob, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.waitLocked(ctx); err != nil {
		return nil, err
	}
	if _, dup := h.jobs[job.ID]; dup {
		return nil, httpjson.Errorf(httpjson.CodeObjectExists, "job %s exists", job.ID)
	}
	if !strings.HasPrefix(job.ID, h.id+"-") {
		return nil, fmt.Errorf("job id %s is not of host %s", job.ID, h.id)
	}
	if job.Artifact == "missing" {
		h.adds++
		return nil, httpjson.ValidationError("artifact", "image %q is not on this host", job.Artifact)
	}
	aj := &host.ActiveJob{Job: job, HostID: h.id, State: host.StateStarting, CreatedAt: time.Now(), StartedAt: time.Now()}
	h.jobs[job.ID] = aj
	h.order = append(h.order, job.ID)
	h.adds++
	h.record("start " + job.Metadata[controller.JobMetaReleaseID] + " " + job.Metadata[controller.JobMetaType])
	h.emitLocked(job.ID)
	if job.Artifact == "crash" {
		one := 1
		aj.State, aj.ExitStatus, aj.EndedAt = host.StateCrashed, &one, time.Now()
	} else {
		aj.State = host.StateUp
	}
	h.emitLocked(job.ID)
	c := *aj
	return &c, nil
}

func (h *fakeHost) StopJob(ctx context.Context, id string) (*host.ActiveJob, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.waitLocked(ctx); err != nil {
		return nil, err
	}
	j, ok := h.jobs[id]
	if !ok {
		return nil, httpjson.NotFound("no job %s", id)
	}
	if hold := h.stopHold; hold != nil && !j.State.Terminal() {
		h.stopping++
		h.maxStopping = max(h.maxStopping, h.stopping)
		h.mu.Unlock()
		select {
		case <-hold:
		case <-ctx.Done():
		}
		h.mu.Lock()
		h.stopping--
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if !j.State.Terminal() {
		j.State = host.StateStopping
		h.emitLocked(id)
		zero := 0
		j.State, j.ExitStatus, j.EndedAt = host.StateDown, &zero, time.Now()
		h.emitLocked(id)
		h.record("stop " + j.Job.Metadata[controller.JobMetaReleaseID] + " " + j.Job.Metadata[controller.JobMetaType])
	}
	c := *j
	return &c, nil
}

// kill crashes a live job behind the scheduler's back and returns its id.
func (h *fakeHost) kill() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range h.order {
		if j := h.jobs[id]; j.State == host.StateUp {
			code := 137
			j.State, j.ExitStatus, j.EndedAt = host.StateCrashed, &code, time.Now()
			h.emitLocked(id)
			return id
		}
	}
	return ""
}

// exit ends job id by itself with status code.
func (h *fakeHost) exit(id string, code int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	j := h.jobs[id]
	j.State, j.ExitStatus, j.EndedAt = host.StateDown, &code, time.Now()
	if code != 0 {
		j.State = host.StateCrashed
	}
	h.emitLocked(id)
}

// drop ends every open stream, as a broken connection does.
func (h *fakeHost) drop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for st := range h.streams {
		h.dropLocked(st)
	}
}

// setRefuse makes new streams and lists fail with err (nil: succeed).
func (h *fakeHost) setRefuse(err error) {
	h.mu.Lock()
	h.refuse = err
	h.mu.Unlock()
}

// hang makes the host stop answering: calls wait, streams go silent (but
// stay open, as over a partitioned network).
func (h *fakeHost) hang() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.hung {
		h.hung, h.resume = true, make(chan struct{})
	}
}

// unhang makes the host answer again.
func (h *fakeHost) unhang() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hung {
		h.hung = false
		close(h.resume)
	}
}

// holdStops makes stops wait until releaseStops.
func (h *fakeHost) holdStops() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopHold = make(chan struct{})
}

// releaseStops ends the held stops, and lets later ones through at once.
func (h *fakeHost) releaseStops() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopHold != nil {
		close(h.stopHold)
		h.stopHold = nil
	}
}

// stopsHeld returns how many stops wait at the moment, and the most that
// ever waited at once.
func (h *fakeHost) stopsHeld() (now, most int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stopping, h.maxStopping
}

func (h *fakeHost) setAfterList(fn func()) {
	h.mu.Lock()
	h.afterList = fn
	h.mu.Unlock()
}

// live counts live jobs by "release type".
func (h *fakeHost) live() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for _, j := range h.jobs {
		if live(j.State) {
			out[j.Job.Metadata[controller.JobMetaReleaseID]+" "+j.Job.Metadata[controller.JobMetaType]]++
		}
	}
	return out
}

func (h *fakeHost) addCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.adds
}

func (h *fakeHost) listCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lists
}

// fakeCluster is a host set the test changes.
type fakeCluster struct {
	log     *eventLog
	mu      sync.Mutex
	hosts   map[string]*fakeHost
	changed chan struct{}
}

var _ Cluster = (*fakeCluster)(nil)

func newFakeCluster(ids ...string) *fakeCluster {
	c := &fakeCluster{log: &eventLog{}, hosts: map[string]*fakeHost{}, changed: make(chan struct{}, 1)}
	for _, id := range ids {
		c.hosts[id] = newFakeHost(id)
		c.hosts[id].global = c.log
	}
	return c
}

func (c *fakeCluster) Hosts() map[string]HostClient {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]HostClient{}
	for id, h := range c.hosts {
		out[id] = h
	}
	return out
}

func (c *fakeCluster) Changed() <-chan struct{} { return c.changed }

func (c *fakeCluster) remove(id string) {
	c.mu.Lock()
	delete(c.hosts, id)
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *fakeCluster) host(id string) *fakeHost {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hosts[id]
}

// relog starts a fresh start/stop log over every host.
func (c *fakeCluster) relog() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = &eventLog{}
	for _, h := range c.hosts {
		h.mu.Lock()
		h.global = c.log
		h.mu.Unlock()
	}
}

func (c *fakeCluster) events() []string {
	c.mu.Lock()
	l := c.log
	c.mu.Unlock()
	return l.all()
}

// live sums live jobs by "release type" over the hosts still in the cluster.
func (c *fakeCluster) live() map[string]int {
	c.mu.Lock()
	hs := maps.Clone(c.hosts)
	c.mu.Unlock()
	out := map[string]int{}
	for _, h := range hs {
		for k, n := range h.live() {
			out[k] += n
		}
	}
	return out
}

// harness is a controller (in memory, or real on Postgres) plus an app
// with a release.
type harness struct {
	t      testing.TB
	ctrl   testController
	app    *controller.App
	art    *controller.Artifact
	crash  *controller.Artifact
	rel    *controller.Release
	logger *slog.Logger
}

// newHarness returns a harness on the in-memory controller.
func newHarness(t testing.TB) *harness {
	t.Helper()
	return setupHarness(t, newFakeController(), testLogger(t))
}

// newIntegrationHarness returns a harness on a real controller on
// Postgres; it skips under -short (except in CI).
func newIntegrationHarness(t testing.TB) *harness {
	t.Helper()
	testdeps.Short(t)
	logger := testLogger(t)
	ctrl := controllertest.New(t, pgtest.New(t).NewDatabase(t), controllertest.Options{Key: "k", Logger: logger})
	return setupHarness(t, ctrl.Client(), logger)
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func setupHarness(t testing.TB, ctrl testController, logger *slog.Logger) *harness {
	ctx := context.Background()
	h := &harness{t: t, ctrl: ctrl, logger: logger}
	h.app = &controller.App{Name: "example"}
	must(t, h.ctrl.CreateApp(ctx, h.app))
	h.art = &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "flynn/slugrunner:test"}
	must(t, h.ctrl.CreateArtifact(ctx, h.art))
	h.crash = &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "crash"}
	must(t, h.ctrl.CreateArtifact(ctx, h.crash))
	h.rel = h.release(h.art)
	return h
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (h *harness) release(art *controller.Artifact) *controller.Release {
	rel := &controller.Release{
		AppID:      h.app.ID,
		ArtifactID: art.ID,
		Processes: map[string]controller.ProcessType{
			"web":    {Cmd: []string{"start", "web"}},
			"worker": {Cmd: []string{"start", "worker"}},
			"agent":  {Cmd: []string{"start", "agent"}, Omni: true},
		},
	}
	must(h.t, h.ctrl.CreateRelease(context.Background(), rel))
	return rel
}

func (h *harness) scale(rel *controller.Release, processes map[string]int) {
	must(h.t, h.ctrl.PutFormation(context.Background(), &controller.Formation{AppID: h.app.ID, ReleaseID: rel.ID, Processes: processes}))
}

// running is a scheduler running until the test ends (or stop is called).
type running struct {
	*Scheduler
	t    testing.TB
	stop func()
}

// run starts a scheduler over cluster with testConfig.
func (h *harness) run(cluster Cluster) *running { return h.runWith(testConfig(), cluster) }

func (h *harness) runWith(cfg Config, cluster Cluster) *running {
	ctx, cancel := context.WithCancel(context.Background())
	s := New(cfg, h.ctrl, cluster, h.logger)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("scheduler Run: %v", err)
			}
		})
	}
	h.t.Cleanup(stop)
	return &running{Scheduler: s, t: h.t, stop: stop}
}

// rounds waits until n more rounds have ended.
func (r *running) rounds(n int) {
	r.t.Helper()
	for range n {
		_, next := r.jobsOf(Key{})
		select {
		case <-next:
		case <-time.After(5 * time.Second):
			r.t.Fatal("no round within 5s")
		}
	}
}

// knowledge returns what the scheduler knows of each host.
func (r *running) knowledge() map[string]Knowledge {
	r.viewMu.Lock()
	defer r.viewMu.Unlock()
	out := map[string]Knowledge{}
	for id, v := range r.views {
		out[id] = v.knowledge
	}
	return out
}

func testConfig() Config {
	return Config{Interval: 50 * time.Millisecond, BackoffBase: 200 * time.Millisecond, BackoffMax: time.Second, BackoffReset: time.Second,
		DeployTimeout: 3 * time.Second, HostTimeout: 2 * time.Second}
}

func key(rel *controller.Release, typ string) string { return rel.ID + " " + typ }

type atomicCounter struct {
	mu sync.Mutex
	n  int
}

func (c *atomicCounter) add() { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *atomicCounter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func itoa(n int) string { return fmt.Sprint(n) }
