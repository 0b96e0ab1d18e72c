package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/poll"
)

type harness struct {
	t       *testing.T
	cfg     Config
	backend *fakeBackend
	trail   *trail
	d       *Daemon
	// registrarFails is how many registrations fail before discoverd
	// answers.
	registrarFails atomic.Int32
	// nodes, when set, makes the registrar a NodeWatcher sending what
	// the test sends here.
	nodes chan []string
}

// newHarness starts a daemon on the fake backend; tune, if any, changes
// the harness's config and backend before it starts.
func newHarness(t *testing.T, lo, hi int, tune ...func(*harness)) *harness {
	tr := &trail{}
	h := &harness{t: t, trail: tr, backend: newFakeBackend(tr), cfg: Config{
		HostID: "h1", StateDir: t.TempDir(), PortMin: lo, PortMax: hi, CheckInterval: 5 * time.Millisecond,
		IPTables: fakeIPTables{trail: tr},
		// Tests listen on a job's port in its stead.
		PortHeld: func(int) bool { return false },
	}}
	for _, f := range tune {
		f(h)
	}
	h.start()
	t.Cleanup(func() { _ = h.d.Close() })
	return h
}

func (h *harness) start() {
	var reg Registrar = fakeRegistrar{trail: h.trail, fails: &h.registrarFails}
	if h.nodes != nil {
		reg = watchingRegistrar{fakeRegistrar{trail: h.trail, fails: &h.registrarFails, nodes: h.nodes}}
	}
	d, err := New(h.cfg, h.backend, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		h.t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.d = d
}

func (h *harness) waitState(id string, want host.JobState) *host.ActiveJob {
	h.t.Helper()
	var a *host.ActiveJob
	poll.UntilNil(h.t, 10*time.Second, "job "+id+" in state "+string(want), func() error {
		var err error
		if a, err = h.d.Job(id); err != nil {
			return err
		}
		if a.State != want {
			return fmt.Errorf("state %s: %+v", a.State, a)
		}
		return nil
	})
	return a
}

// jobTrail is the trail without the host's own registration, which runs
// concurrently with everything else, and without the app network's setup.
func (h *harness) jobTrail() []string {
	var out []string
	for _, e := range h.trail.list() {
		if !strings.HasPrefix(e, "register flynn-host ") && !strings.HasPrefix(e, "firewall ") && !strings.HasPrefix(e, "create network ") {
			out = append(out, e)
		}
	}
	return out
}

func testJob(id string, args ...string) *host.Job {
	return &host.Job{ID: id, Artifact: "img", Config: host.JobConfig{Args: args}}
}

// freePort returns a port that is free on loopback.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestReadinessRegistrationAndStopOrder(t *testing.T) {
	port := freePort(t)
	h := newHarness(t, port, port)
	j := testJob("h1-web", "sleep")
	j.Config.Ports = []host.Port{{Service: "web"}}
	a, err := h.d.AddJob(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if a.State != host.StateStarting {
		t.Fatalf("state = %s before the port answers, want starting", a.State)
	}
	// Nothing listens yet: the job must stay starting and unregistered.
	poll.Holds(t, 100*time.Millisecond, "job starting while its port refuses connections", func() bool {
		a, err := h.d.Job(j.ID)
		return err == nil && a.State == host.StateStarting
	})
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h.waitState(j.ID, host.StateUp)
	addr := "web 127.0.0.1:" + strconv.Itoa(port)
	if !slices.Contains(h.trail.list(), "register "+addr) {
		t.Fatalf("up but not registered: %v", h.trail.list())
	}
	if _, err := h.d.StopJob(context.Background(), j.ID); err != nil {
		t.Fatal(err)
	}
	got := h.jobTrail()
	want := []string{"start flynn-h1-web", "register " + addr, "deregister " + addr, "signal SIGTERM"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("order of events = %v, want %v (deregistered before the signal)", got, want)
	}
}

// A job whose port answers before discoverd does (bootstrap starts
// discoverd and postgres together) is registered once discoverd answers,
// and is up only then.
func TestJobRegistersOnceDiscoverdAnswers(t *testing.T) {
	port := freePort(t)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h := newHarness(t, port, port, func(h *harness) { h.registrarFails.Store(3) })
	j := testJob("h1-db", "sleep")
	j.Config.Ports = []host.Port{{Service: "db"}}
	if _, err := h.d.AddJob(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	h.waitState(j.ID, host.StateUp)
	refused, registered := 0, 0
	for _, e := range h.trail.list() {
		switch {
		case e == "refused db":
			refused++
		case strings.HasPrefix(e, "register db "):
			registered++
		}
	}
	// The host registers itself too, and may take some of the refusals.
	if refused < 2 || registered != 1 {
		t.Fatalf("%d refused and %d registrations of the job, want refusals and then 1: %v", refused, registered, h.trail.list())
	}
}

// Docker's log follower can end while the container runs on (after a
// flood of output); the daemon follows again and loses nothing after.
func TestLogFollowedAgainAfterAnEarlyEnd(t *testing.T) {
	h := newHarness(t, 0, 0)
	j := testJob("h1-flood", "early-eof")
	if _, err := h.d.AddJob(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "the line after the follower's early end is recorded", func() bool {
		found := false
		err := h.d.ReadLog(context.Background(), j.ID, LogOptions{}, func(l host.LogLine) error {
			found = found || l.Data == "followed again\n"
			return nil
		})
		return err == nil && found
	})
}

func TestStopKillsAfterGrace(t *testing.T) {
	h := newHarness(t, 40000, 40009)
	j := testJob("h1-stubborn", "ignore-term")
	j.Config.StopGrace = host.Duration(50 * time.Millisecond)
	if _, err := h.d.AddJob(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a, err := h.d.StopJob(context.Background(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.State != host.StateDown || *a.ExitStatus != 137 || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("stop: %s exit %d after %v; want down 137 after the 50ms grace", a.State, *a.ExitStatus, time.Since(start))
	}
	if got := h.jobTrail(); !slices.Equal(got[1:], []string{"signal SIGTERM", "signal SIGKILL"}) {
		t.Fatalf("signals = %v", got)
	}
}

// StopAll (--stop-jobs) stops every running job at once, a stubborn one
// after its grace period, and leaves the ended ones alone.
func TestStopAll(t *testing.T) {
	h := newHarness(t, 40000, 40009)
	ctx := context.Background()
	stubborn := testJob("h1-stubborn", "ignore-term")
	stubborn.Config.StopGrace = host.Duration(50 * time.Millisecond)
	for _, j := range []*host.Job{testJob("h1-a", "sleep"), testJob("h1-b", "sleep"), stubborn} {
		if _, err := h.d.AddJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		h.waitState(j.ID, host.StateUp)
	}
	if _, err := h.d.StopJob(ctx, "h1-a"); err != nil {
		t.Fatal(err)
	}
	stopped, left := h.d.StopAll(ctx)
	if stopped != 2 || left != 0 {
		t.Fatalf("StopAll = %d stopped, %d left; want 2, 0", stopped, left)
	}
	for _, a := range h.d.Jobs() {
		if !a.State.Terminal() {
			t.Errorf("job %s is %s after StopAll", a.Job.ID, a.State)
		}
	}
	if st, err := h.d.Job(stubborn.ID); err == nil && (st.ExitStatus == nil || *st.ExitStatus != 137) {
		t.Errorf("the stubborn job ended with %v, want 137 (killed after its grace)", st.ExitStatus)
	}
}

func TestAddJobErrorsLeaveNothing(t *testing.T) {
	h := newHarness(t, 40000, 40001)
	ctx := context.Background()
	if _, err := h.d.AddJob(ctx, testJob("h1-ok", "sleep")); err != nil {
		t.Fatal(err)
	}
	missing := testJob("h1-a", "sleep")
	missing.Artifact = "missing"
	ports := testJob("h1-b", "sleep")
	ports.Config.Ports = []host.Port{{}, {}, {}}
	tests := []struct {
		name string
		job  *host.Job
		code httpjson.Code
	}{
		{"unknown image", missing, httpjson.CodeValidation},
		{"bad command", testJob("h1-c", "nope"), httpjson.CodeValidation},
		{"ports exhausted", ports, httpjson.CodeServiceUnavailable},
		{"duplicate", testJob("h1-ok", "sleep"), httpjson.CodeObjectExists},
		{"invalid env", &host.Job{ID: "h1-d", Artifact: "img", Config: host.JobConfig{Env: map[string]string{"A-B": "x"}}}, httpjson.CodeValidation},
		{"negative memory", &host.Job{ID: "h1-e", Artifact: "img", Config: host.JobConfig{Resources: host.Resources{Memory: -1}}}, httpjson.CodeValidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.d.AddJob(ctx, tt.job)
			var e *httpjson.Error
			if !errors.As(err, &e) || e.Code != tt.code {
				t.Fatalf("AddJob = %v, want %s", err, tt.code)
			}
		})
	}
	if all, _ := h.backend.count(); all != 1 {
		t.Fatalf("%d containers, want 1 (failed adds leave none)", all)
	}
	if free := h.d.ports.Free(); free != 2 {
		t.Fatalf("%d ports free, want 2", free)
	}
	if n := len(h.d.Jobs()); n != 1 {
		t.Fatalf("%d jobs, want 1", n)
	}
}

func TestRestartAdoptsWithoutStartingTwice(t *testing.T) {
	h := newHarness(t, 40000, 40009)
	ctx := context.Background()
	run := testJob("h1-run", "sleep")
	run.Config.Ports = []host.Port{{}}
	a, err := h.d.AddJob(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	port := a.Job.Config.Ports[0].Port
	if _, err := h.d.AddJob(ctx, testJob("h1-dies", "sleep")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.AddJob(ctx, testJob("h1-done", "exit", "0")); err != nil {
		t.Fatal(err)
	}
	h.waitState("h1-done", host.StateDown)
	h.waitState("h1-run", host.StateUp)

	_ = h.d.Close()
	h.backend.crash("flynn-h1-dies", 2)
	h.start()

	if got := h.waitState("h1-run", host.StateUp); got.Job.Config.Ports[0].Port != port {
		t.Fatalf("port after restart = %d, want %d", got.Job.Config.Ports[0].Port, port)
	}
	if got := h.waitState("h1-dies", host.StateCrashed); *got.ExitStatus != 2 {
		t.Fatalf("exit status of the job that died meanwhile = %d, want 2", *got.ExitStatus)
	}
	h.waitState("h1-done", host.StateDown)
	if all, started := h.backend.count(); all != 3 || started != 3 {
		t.Fatalf("%d containers, %d started; want 3 and 3 (none created or started again)", all, started)
	}
	starts := 0
	for _, e := range h.trail.list() {
		if e == "start flynn-h1-run" {
			starts++
		}
	}
	if starts != 1 {
		t.Fatalf("job started %d times, want once", starts)
	}
	if free := h.d.ports.Free(); free != 9 {
		t.Fatalf("%d ports free, want 9 (the running job keeps its port)", free)
	}
	// The next allocation does not hand out the adopted port.
	next := testJob("h1-next", "sleep")
	next.Config.Ports = []host.Port{{}}
	b, err := h.d.AddJob(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if b.Job.Config.Ports[0].Port == port {
		t.Fatalf("allocated the re-adopted job's port %d again", port)
	}
}

func TestFinishedJobsCollected(t *testing.T) {
	h := newHarness(t, 40000, 40009)
	h.d.cfg.MaxFinished = 2
	for i := range 5 {
		id := fmt.Sprintf("h1-j%d", i)
		if _, err := h.d.AddJob(context.Background(), testJob(id, "exit", "1")); err != nil {
			t.Fatal(err)
		}
		h.waitState(id, host.StateCrashed)
	}
	poll.UntilNil(t, 5*time.Second, "finished jobs collected", func() error {
		if all, _ := h.backend.count(); len(h.d.Jobs()) != 2 || all != 2 {
			return fmt.Errorf("%d jobs and %d containers kept, want 2 and 2", len(h.d.Jobs()), all)
		}
		return nil
	})
	if _, err := h.d.Job("h1-j4"); err != nil {
		t.Fatalf("newest finished job collected: %v", err)
	}
}

func TestHostRegistersItself(t *testing.T) {
	h := newHarness(t, 40000, 40009)
	poll.UntilNil(t, 5*time.Second, "host registered", func() error {
		if trail := h.trail.list(); !slices.Contains(trail, "register flynn-host 127.0.0.1:1113") {
			return fmt.Errorf("trail %v", trail)
		}
		return nil
	})
	_ = h.d.Close()
	// Its registration outlives it, as its jobs do, for the next daemon
	// (or the TTL).
	if slices.Contains(h.trail.list(), "deregister flynn-host 127.0.0.1:1113") {
		t.Fatalf("host deregistered on Close: %v", h.trail.list())
	}
}

// TestPersistentJobsStartAgainAfterARestart: the machine went down with
// its containers; the new daemon starts the persistent jobs again (new ids,
// same config and metadata, oldest first), and nothing else.
func TestPersistentJobsStartAgainAfterARestart(t *testing.T) {
	h := newHarness(t, 40000, 40009)
	ctx := context.Background()
	first := testJob("h1-first", "sleep")
	first.Config.Persistent = true
	first.Metadata = map[string]string{"flynn.app-id": "discoverd"}
	second := testJob("h1-second", "sleep")
	second.Config.Persistent = true
	plain := testJob("h1-plain", "sleep")
	stopped := testJob("h1-stopped", "sleep")
	stopped.Config.Persistent = true
	for _, j := range []*host.Job{first, second, plain, stopped} {
		if _, err := h.d.AddJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		h.waitState(j.ID, host.StateUp)
	}
	// Asked to stop: it stays stopped, persistent or not.
	if _, err := h.d.StopJob(ctx, stopped.ID); err != nil {
		t.Fatal(err)
	}

	_ = h.d.Close()
	for _, name := range []string{"flynn-h1-first", "flynn-h1-second", "flynn-h1-plain"} {
		h.backend.crash(name, 143) // the machine stopped them
	}
	h.start()

	var revived []*host.ActiveJob
	poll.UntilNil(t, 10*time.Second, "persistent jobs revived", func() error {
		revived = revived[:0]
		for _, a := range h.d.Jobs() {
			if a.State == host.StateUp && a.Job.Config.Persistent {
				revived = append(revived, a)
			}
		}
		if len(revived) < 2 {
			return fmt.Errorf("revived %d persistent jobs, want 2", len(revived))
		}
		return nil
	})
	if len(revived) != 2 {
		t.Fatalf("%d persistent jobs up, want 2: %+v", len(revived), revived)
	}
	// Oldest first, with the old one's config and metadata.
	if got := revived[0].Job; got.Config.Args[0] != "sleep" || got.Metadata["flynn.app-id"] != "discoverd" || got.ID == first.ID {
		t.Errorf("first revived job = %+v, want a new id with h1-first's metadata", got)
	}
	for _, id := range []string{first.ID, second.ID, plain.ID} {
		if a, _ := h.d.Job(id); a.State != host.StateCrashed {
			t.Errorf("old job %s: %s, want crashed (it ended with the machine)", id, a.State)
		}
	}
	for _, a := range h.d.Jobs() {
		if a.State == host.StateUp && !a.Job.Config.Persistent {
			t.Errorf("non-persistent job %s started again", a.Job.ID)
		}
	}
	if a, _ := h.d.Job(stopped.ID); a.State != host.StateDown {
		t.Errorf("stopped persistent job: %s, want down and left alone", a.State)
	}
}

// TestCrashedPersistentJobRevived checks that a persistent job that
// crashes while the daemon runs is started again, under a new id, when
// nothing replaced it within ReviveDelay (the scheduler may be what
// crashed), again and again while starting it fails, and is left alone
// when something did, and that a plain job or a stopped persistent one is
// never started again.
func TestCrashedPersistentJobRevived(t *testing.T) {
	h := newHarness(t, 40000, 40009, func(h *harness) { h.cfg.ReviveDelay = 50 * time.Millisecond })
	ctx := context.Background()
	add := func(id string, persistent bool, meta map[string]string) *host.Job {
		t.Helper()
		j := testJob(id, "sleep")
		j.Config.Persistent, j.Metadata = persistent, meta
		if _, err := h.d.AddJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		h.waitState(j.ID, host.StateUp)
		return j
	}
	live := func(meta map[string]string) []string {
		var ids []string
		for _, a := range h.d.Jobs() {
			if !a.State.Terminal() && maps.Equal(a.Job.Metadata, meta) {
				ids = append(ids, a.Job.ID)
			}
		}
		return ids
	}

	scheduler := map[string]string{"flynn.app-id": "scheduler", "flynn.process-type": "scheduler"}
	add("h1-scheduler", true, scheduler)
	h.backend.crash("flynn-h1-scheduler", 137)
	poll.Until(t, 10*time.Second, "the crashed scheduler started again", func() bool {
		ids := live(scheduler)
		return len(ids) == 1 && ids[0] != "h1-scheduler"
	})

	// A start that fails is tried again until one succeeds.
	discoverd := map[string]string{"flynn.app-id": "discoverd", "flynn.process-type": "app"}
	add("h1-discoverd", true, discoverd)
	h.backend.createFails.Store(2)
	h.backend.crash("flynn-h1-discoverd", 137)
	poll.Until(t, 10*time.Second, "the crashed discoverd started again after two failed starts", func() bool {
		ids := live(discoverd)
		return len(ids) == 1 && ids[0] != "h1-discoverd" && h.backend.createFails.Load() < 0
	})

	// Replaced within the delay (as the scheduler does): no second one.
	postgres := map[string]string{"flynn.app-id": "postgres", "flynn.process-type": "postgres"}
	add("h1-postgres", true, postgres)
	h.backend.crash("flynn-h1-postgres", 137)
	add("h1-postgres-2", true, postgres)
	poll.Holds(t, 300*time.Millisecond, "one postgres", func() bool { return len(live(postgres)) == 1 })

	plainMeta := map[string]string{"flynn.app-id": "app"}
	add("h1-plain", false, plainMeta)
	h.backend.crash("flynn-h1-plain", 1)
	stoppedMeta := map[string]string{"flynn.app-id": "stopped"}
	add("h1-stopped", true, stoppedMeta)
	if _, err := h.d.StopJob(ctx, "h1-stopped"); err != nil {
		t.Fatal(err)
	}
	poll.Holds(t, 300*time.Millisecond, "no plain or stopped job started again", func() bool {
		return len(live(plainMeta)) == 0 && len(live(stoppedMeta)) == 0
	})
}

// TestPortHeld checks the default check of a port before it is handed
// out: held while another process listens on it, free after, and never
// held for an address that is not this machine's.
func TestPortHeld(t *testing.T) {
	port := freePort(t)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	held := portHeld("127.0.0.1")
	if !held(port) {
		t.Error("a port another listener holds is not reported held")
	}
	ln.Close()
	if held(port) {
		t.Error("a closed port is reported held")
	}
	if portHeld("192.0.2.1")(port) {
		t.Error("an address of another machine makes its ports look held")
	}
}
