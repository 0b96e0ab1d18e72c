package scheduler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/controllertest"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/pgtest"
)

// fakeHost is an in-memory host: jobs come up at once, except jobs of the
// artifact "crash", which crash at once.
type fakeHost struct {
	id string

	mu     sync.Mutex
	jobs   map[string]*host.ActiveJob
	order  []string // job ids in start order
	adds   int
	events []string // "start <release> <type>" / "stop <release> <type>"
	// global, when set, records every host's events in one order.
	global *eventLog
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
	return &fakeHost{id: id, jobs: map[string]*host.ActiveJob{}}
}

func (h *fakeHost) ListJobs(ctx context.Context) ([]*host.ActiveJob, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*host.ActiveJob
	for _, id := range h.order {
		j := *h.jobs[id]
		out = append(out, &j)
	}
	return out, nil
}

func (h *fakeHost) AddJob(ctx context.Context, job *host.Job) (*host.ActiveJob, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, dup := h.jobs[job.ID]; dup {
		return nil, httpjson.Errorf(httpjson.CodeObjectExists, "job %s exists", job.ID)
	}
	if !strings.HasPrefix(job.ID, h.id+"-") {
		return nil, fmt.Errorf("job id %s is not of host %s", job.ID, h.id)
	}
	aj := &host.ActiveJob{Job: job, HostID: h.id, State: host.StateUp, CreatedAt: time.Now(), StartedAt: time.Now()}
	if job.Artifact == "crash" {
		one := 1
		aj.State, aj.ExitStatus, aj.EndedAt = host.StateCrashed, &one, time.Now()
	}
	h.jobs[job.ID] = aj
	h.order = append(h.order, job.ID)
	h.adds++
	h.record("start " + job.Metadata[controller.JobMetaReleaseID] + " " + job.Metadata[controller.JobMetaType])
	return aj, nil
}

func (h *fakeHost) StopJob(ctx context.Context, id string) (*host.ActiveJob, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	j, ok := h.jobs[id]
	if !ok {
		return nil, httpjson.NotFound("no job %s", id)
	}
	if !j.State.Terminal() {
		zero := 0
		j.State, j.ExitStatus, j.EndedAt = host.StateDown, &zero, time.Now()
		h.record("stop " + j.Job.Metadata[controller.JobMetaReleaseID] + " " + j.Job.Metadata[controller.JobMetaType])
	}
	c := *j
	return &c, nil
}

// kill crashes a live job behind the scheduler's back.
func (h *fakeHost) kill() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range h.order {
		if j := h.jobs[id]; j.State == host.StateUp {
			code := 137
			j.State, j.ExitStatus = host.StateCrashed, &code
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

// fakeCluster is a host set the test changes.
type fakeCluster struct {
	log     *eventLog
	mu      sync.Mutex
	hosts   map[string]*fakeHost
	changed chan struct{}
}

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
	c.changed <- struct{}{}
}

func (c *fakeCluster) host(id string) *fakeHost {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hosts[id]
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

// harness is a real controller on Postgres plus an app with a release.
type harness struct {
	t      testing.TB
	ctrl   *client.Client
	app    *controller.App
	art    *controller.Artifact
	crash  *controller.Artifact
	rel    *controller.Release
	logger *slog.Logger
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctrl := controllertest.New(t, pgtest.New(t).NewDatabase(t), controllertest.Options{Key: "k", Logger: logger})
	h := &harness{t: t, ctrl: ctrl.Client(), logger: logger}
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

// run starts a scheduler over cluster until the test ends (or stop is called).
func (h *harness) run(cluster Cluster) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	s := New(testConfig(), h.ctrl, cluster, h.logger)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("scheduler Run: %v", err)
			}
		})
	}
	h.t.Cleanup(stop)
	return stop
}

func testConfig() Config {
	return Config{Interval: 50 * time.Millisecond, BackoffBase: 200 * time.Millisecond, BackoffMax: time.Second, BackoffReset: time.Second, DeployTimeout: 3 * time.Second}
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
