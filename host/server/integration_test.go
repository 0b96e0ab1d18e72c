package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/poll"
)

func TestRunJobAndReadOutput(t *testing.T) {
	h := newTestHost(t, nil)
	j := h.job("echo", "hello", "world")
	h.add(j)
	a := h.waitState(j.ID, host.StateDown, host.StateCrashed)
	if a.State != host.StateDown || a.ExitStatus == nil || *a.ExitStatus != 0 {
		t.Fatalf("job = %s exit %v, want down with 0", a.State, a.ExitStatus)
	}
	if got := h.logText(j.ID, host.StreamStdout); got != "hello world\n" {
		t.Fatalf("stdout = %q, want %q", got, "hello world\n")
	}

	e := h.job("stderr", "oops")
	h.add(e)
	h.waitState(e.ID, host.StateDown)
	if got := h.logText(e.ID, host.StreamStdout); got != "" {
		t.Errorf("stdout of a stderr-only job = %q, want empty (streams kept apart)", got)
	}
	if got := h.logText(e.ID, host.StreamStderr); got != "oops\n" {
		t.Errorf("stderr = %q, want %q", got, "oops\n")
	}
}

func TestEnvAndPorts(t *testing.T) {
	h := newTestHost(t, nil)
	j := h.job("env", "GREETING", "PORT", "PORT_0", "PORT_1")
	j.Config.Env = map[string]string{"GREETING": "hi"}
	j.Config.Ports = []host.Port{{}, {}}
	a := h.add(j)
	p0, p1 := a.Job.Config.Ports[0].Port, a.Job.Config.Ports[1].Port
	if p0 < h.cfg.PortMin || p0 > h.cfg.PortMax || p1 < h.cfg.PortMin || p1 > h.cfg.PortMax || p0 == p1 {
		t.Fatalf("allocated ports %d, %d; want two distinct ports in %d-%d", p0, p1, h.cfg.PortMin, h.cfg.PortMax)
	}
	h.waitState(j.ID, host.StateDown)
	want := fmt.Sprintf("GREETING=hi\nPORT=%d\nPORT_0=%d\nPORT_1=%d\n", p0, p0, p1)
	if got := h.logText(j.ID, ""); got != want {
		t.Fatalf("env output = %q, want %q", got, want)
	}
	st, err := h.c.Status(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.PortsFree != 100 {
		t.Fatalf("ports free after the job ended = %d, want 100", st.PortsFree)
	}
}

func TestWebJobUpRegisteredAndStopped(t *testing.T) {
	h := newTestHost(t, nil)
	for _, hostNet := range []bool{false, true} {
		t.Run(fmt.Sprintf("host network %v", hostNet), func(t *testing.T) { testWebJob(t, h, hostNet) })
	}
}

func testWebJob(t *testing.T, h *testHost, hostNetwork bool) {
	j := h.job("serve", "300") // listens only after 300ms: up must wait for it
	j.Config.HostNetwork = hostNetwork
	j.Config.Ports = []host.Port{{Service: "web-test", Proto: "http", CheckPath: "/"}}
	a := h.add(j)
	port := a.Job.Config.Ports[0].Port
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if a.State != host.StateStarting {
		t.Fatalf("state right after start = %s, want starting (not listening yet)", a.State)
	}
	h.waitState(j.ID, host.StateUp)
	// Up means the port answers and the job is registered.
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("job reported up but its port does not answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("port=%d\n", port); string(body) != want {
		t.Fatalf("job answered %q, want %q", body, want)
	}
	if !h.reg.isLive("web-test", addr) {
		t.Fatalf("job up but not registered; registrations: %v", h.reg.events)
	}
	stopped, err := h.c.StopJob(ctxT(t), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stopped.State != host.StateDown {
		t.Fatalf("state after stop = %s, want down", stopped.State)
	}
	if h.reg.isLive("web-test", addr) {
		t.Fatal("job still registered after it stopped")
	}
	if !strings.Contains(h.logText(j.ID, host.StreamStdout), "got SIGTERM") {
		t.Fatal("job did not get SIGTERM")
	}
}

func TestStopWithGraceAndKill(t *testing.T) {
	h := newTestHost(t, nil)
	tests := []struct {
		name       string
		args       []string
		grace      time.Duration
		wantStatus int
		minTime    time.Duration
	}{
		{name: "honours SIGTERM", args: []string{"sleep"}, grace: 10 * time.Second, wantStatus: 0},
		{name: "killed after grace", args: []string{"ignore-term"}, grace: 700 * time.Millisecond, wantStatus: 137, minTime: 700 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := h.job(tt.args...)
			j.Config.StopGrace = host.Duration(tt.grace)
			h.add(j)
			h.waitState(j.ID, host.StateUp)
			waitLog(t, h, j.ID, "ing") // "sleeping"/"ignoring": the handler is installed
			start := time.Now()
			a, err := h.c.StopJob(ctxT(t), j.ID)
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if a.State != host.StateDown || a.ExitStatus == nil || *a.ExitStatus != tt.wantStatus {
				t.Fatalf("after stop: %s exit %v, want down exit %d", a.State, a.ExitStatus, tt.wantStatus)
			}
			if took < tt.minTime || took > tt.grace+5*time.Second {
				t.Fatalf("stop took %v, want between %v and grace %v (+5s)", took, tt.minTime, tt.grace)
			}
		})
	}
}

func TestCrashDetection(t *testing.T) {
	h := newTestHost(t, nil)
	events, err := h.c.Events(ctxT(t), "")
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	j := h.job("exit", "3")
	h.add(j)
	a := h.waitState(j.ID, host.StateCrashed, host.StateDown)
	if a.State != host.StateCrashed || a.ExitStatus == nil || *a.ExitStatus != 3 {
		t.Fatalf("job = %s exit %v, want crashed with 3", a.State, a.ExitStatus)
	}
	// The event stream saw it go through starting/up to crashed.
	var states []host.JobState
	for {
		ev, err := events.Next()
		if err != nil {
			t.Fatalf("events ended early after %v: %v", states, err)
		}
		if ev.JobID == j.ID {
			states = append(states, ev.State)
			if ev.State == host.StateCrashed {
				break
			}
		}
	}
	if states[0] != host.StateStarting {
		t.Fatalf("events %v, want starting first", states)
	}
}

func TestRestartReadoptsJobs(t *testing.T) {
	h := newTestHost(t, nil)
	var ids []string
	ports := map[string]int{}
	for range 3 {
		j := h.job("serve")
		j.Config.Ports = []host.Port{{Service: "readopt-test"}}
		a := h.add(j)
		ids = append(ids, j.ID)
		ports[j.ID] = a.Job.Config.Ports[0].Port
	}
	crasher := h.job("sleep")
	h.add(crasher)
	for _, id := range ids {
		h.waitState(id, host.StateUp)
	}
	h.waitState(crasher.ID, host.StateUp)
	waitLog(t, h, crasher.ID, "sleeping")

	h.shutdown()
	// While no daemon runs, one job dies.
	if err := h.docker.ContainerKill(context.Background(), "flynn-"+crasher.ID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	waitContainerExited(t, h, "flynn-"+crasher.ID)
	h.start()

	jobs, err := h.c.ListJobs(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 4 {
		t.Fatalf("re-adopted %d jobs, want 4", len(jobs))
	}
	for _, id := range ids {
		a := h.waitState(id, host.StateUp)
		if got := a.Job.Config.Ports[0].Port; got != ports[id] {
			t.Errorf("job %s port after restart = %d, want %d", id, got, ports[id])
		}
		if !h.reg.isLive("readopt-test", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[id]))) {
			t.Errorf("job %s not registered again after restart", id)
		}
	}
	a := h.waitState(crasher.ID, host.StateCrashed)
	if a.ExitStatus == nil || *a.ExitStatus == 0 {
		t.Errorf("job that died meanwhile: exit %v, want a non-zero status", a.ExitStatus)
	}
	if got := len(h.containers()); got != 4 {
		t.Fatalf("%d containers after restart, want 4 (nothing started twice)", got)
	}
	// Adding a job with a re-adopted id is refused; allocation skips their ports.
	dup := h.job("sleep")
	dup.ID = ids[0]
	if _, err := h.c.AddJob(ctxT(t), dup); !httpjson.IsCode(err, httpjson.CodeObjectExists) {
		t.Fatalf("AddJob with a re-adopted id: %v, want object_exists", err)
	}
	st, _ := h.c.Status(ctxT(t))
	if st.PortsFree != 97 {
		t.Fatalf("ports free after restart = %d, want 97", st.PortsFree)
	}
	// The log survived the restart and was not duplicated.
	if got := strings.Count(h.logText(ids[0], host.StreamStdout), "serving on"); got != 1 {
		t.Fatalf("'serving on' appears %d times in the log after restart, want 1", got)
	}
}

func TestManyJobsNoLeaks(t *testing.T) {
	h := newTestHost(t, func(c *daemon.Config) { c.MaxFinished = 10 })
	const n = 50
	var ids []string
	for range n {
		j := h.job("sleep")
		j.Config.Ports = []host.Port{{}}
		h.add(j)
		ids = append(ids, j.ID)
	}
	st, _ := h.c.Status(ctxT(t))
	if st.PortsFree != 100-n {
		t.Fatalf("ports free with %d jobs = %d, want %d", n, st.PortsFree, 100-n)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := h.c.StopJob(context.Background(), id)
			if err == nil && a.State != host.StateDown {
				err = fmt.Errorf("job %s %s after stop", id, a.State)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st, _ = h.c.Status(ctxT(t))
	if st.PortsFree != 100 {
		t.Fatalf("ports free after stopping all = %d, want 100", st.PortsFree)
	}
	// The last job's end may be collected just after its stop answered.
	poll.UntilNil(t, 10*time.Second, "the 10 newest finished jobs kept", func() error {
		if jobs, err := h.c.ListJobs(ctxT(t)); err != nil || len(jobs) != 10 {
			return fmt.Errorf("%d jobs kept (%v)", len(jobs), err)
		}
		return nil
	})
	// Collection removes containers right after the jobs end: poll.
	poll.UntilNil(t, 30*time.Second, "finished jobs' containers collected", func() error {
		if got := len(h.containers()); got != 10 {
			return fmt.Errorf("%d containers left, want 10 (the finished jobs kept for inspection)", got)
		}
		return nil
	})
}

func TestVolumeSurvivesJobRestart(t *testing.T) {
	h := newTestHost(t, nil)
	mount := []host.Mount{{Source: "vol-test", Target: "/data"}}
	w := h.job("write", "/data/greeting", "kept")
	w.Config.Mounts = mount
	h.add(w)
	if a := h.waitState(w.ID, host.StateDown, host.StateCrashed); a.State != host.StateDown {
		t.Fatalf("writer %s: %s", a.State, h.logText(w.ID, ""))
	}
	r := h.job("read", "/data/greeting")
	r.Config.Mounts = mount
	h.add(r)
	h.waitState(r.ID, host.StateDown, host.StateCrashed)
	if got := h.logText(r.ID, ""); got != "kept\n" {
		t.Fatalf("second job read %q, want %q", got, "kept\n")
	}
}

func TestBadInput(t *testing.T) {
	h := newTestHost(t, func(c *daemon.Config) { c.PortMax = c.PortMin + 1 })
	ctx := ctxT(t)
	unknown := h.job("echo")
	unknown.Artifact = "flynn-no-such-image:latest"
	badCmd := h.job("echo")
	badCmd.Config.Entrypoint = []string{"/no-such-binary"}
	tooMany := h.job("sleep")
	tooMany.Config.Ports = []host.Port{{}, {}, {}}
	badMount := h.job("sleep")
	badMount.Config.HostNetwork = true
	badMount.Config.Mounts = []host.Mount{{Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
	appBind := h.job("sleep")
	appBind.Config.Mounts = []host.Mount{{Source: "/srv", Target: "/srv"}}
	tests := []struct {
		name string
		job  *host.Job
		code httpjson.Code
	}{
		{name: "unknown image", job: unknown, code: httpjson.CodeValidation},
		{name: "bad command", job: badCmd, code: httpjson.CodeValidation},
		{name: "ports exhausted", job: tooMany, code: httpjson.CodeServiceUnavailable},
		{name: "docker socket", job: badMount, code: httpjson.CodeValidation},
		{name: "app job bind mount", job: appBind, code: httpjson.CodeValidation},
		{name: "bad id", job: &host.Job{ID: "-bad", Artifact: h.image}, code: httpjson.CodeValidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.c.AddJob(ctx, tt.job)
			var e *httpjson.Error
			if !errors.As(err, &e) || e.Code != tt.code {
				t.Fatalf("AddJob = %v, want %s", err, tt.code)
			}
			if e.Message == "" {
				t.Fatal("error without a message")
			}
		})
	}
	// Duplicate id.
	j := h.job("sleep")
	h.add(j)
	if _, err := h.c.AddJob(ctx, j); !httpjson.IsCode(err, httpjson.CodeObjectExists) {
		t.Fatalf("duplicate AddJob = %v, want object_exists", err)
	}
	// Malformed JSON and a wrong key, raw.
	for _, tc := range []struct {
		body, key string
		status    int
	}{
		{body: `{"id":`, key: testKey, status: 400},
		{body: `{"artifact":1}`, key: testKey, status: 400},
		{body: `{}`, key: "wrong", status: 401},
	} {
		req, _ := http.NewRequest(http.MethodPut, h.srv.URL+"/host/jobs/x1", bytes.NewBufferString(tc.body))
		req.SetBasicAuth("", tc.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("PUT %s with key %q: status %d, want %d", tc.body, tc.key, resp.StatusCode, tc.status)
		}
	}
	if _, err := h.c.GetJob(ctx, "nope"); !httpjson.IsNotFound(err) {
		t.Errorf("GetJob(nope) = %v, want not_found", err)
	}
	if err := h.c.SignalJob(ctx, j.ID, "NOPE"); !httpjson.IsCode(err, httpjson.CodeValidation) {
		t.Errorf("SignalJob(NOPE) = %v, want validation_error", err)
	}
	// Nothing leaked: one container (the sleeping job) and its ports only.
	if got := len(h.containers()); got != 1 {
		t.Fatalf("%d containers after the bad requests, want 1", got)
	}
	st, _ := h.c.Status(ctx)
	if st.PortsFree != 2 {
		t.Fatalf("ports free = %d, want 2", st.PortsFree)
	}
}

func TestSignal(t *testing.T) {
	h := newTestHost(t, nil)
	j := h.job("sleep")
	h.add(j)
	h.waitState(j.ID, host.StateUp)
	waitLog(t, h, j.ID, "sleeping")
	if err := h.c.SignalJob(ctxT(t), j.ID, "TERM"); err != nil {
		t.Fatal(err)
	}
	a := h.waitState(j.ID, host.StateDown, host.StateCrashed)
	if a.State != host.StateDown {
		t.Fatalf("after SIGTERM: %s", a.State)
	}
}

func TestAttach(t *testing.T) {
	h := newTestHost(t, nil)
	tests := []struct {
		name       string
		args       []string
		stdin      string
		tty        bool
		wantOut    string
		wantErr    string
		wantStatus int
	}{
		{name: "stdin to stdout", args: []string{"cat"}, stdin: "hello\nthere\n", wantOut: "hello\nthere\n"},
		{name: "exit status and stderr", args: []string{"exit", "5"}, wantErr: "exiting with 5\n", wantStatus: 5},
		{name: "tty", args: []string{"echo", "in a tty"}, tty: true, wantOut: "in a tty\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := h.job(tt.args...)
			j.Config.TTY = tt.tty
			req := &host.AttachRequest{Job: j, Stdin: tt.stdin != "", Height: 24, Width: 80}
			var out, errOut bytes.Buffer
			status, err := h.c.Attach(ctxT(t), req, client.AttachIO{Stdin: strings.NewReader(tt.stdin), Stdout: &out, Stderr: &errOut})
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.wantStatus || out.String() != tt.wantOut || errOut.String() != tt.wantErr {
				t.Fatalf("status %d stdout %q stderr %q; want %d %q %q", status, out.String(), errOut.String(), tt.wantStatus, tt.wantOut, tt.wantErr)
			}
		})
	}
}

func waitLog(t *testing.T, h *testHost, id, substr string) {
	t.Helper()
	poll.Until(t, 20*time.Second, fmt.Sprintf("job %s logged %q", id, substr), func() bool {
		return strings.Contains(h.logText(id, ""), substr)
	})
}

func waitContainerExited(t *testing.T, h *testHost, name string) {
	t.Helper()
	poll.Until(t, 20*time.Second, "container "+name+" exited", func() bool {
		info, err := h.docker.ContainerInspect(context.Background(), name)
		return err == nil && info.State != nil && !info.State.Running
	})
}

func TestContainersUnprivilegedWithCABundle(t *testing.T) {
	h := newTestHost(t, nil)
	if h.cfg.CABundle == "" {
		t.Skip("no CA bundle on this machine")
	}
	tests := []struct {
		name        string
		hostNetwork bool
		wantNet     string
		wantCaps    bool
		wantUser    string
	}{
		{name: "app job", wantNet: h.cfg.AppNetwork, wantUser: "1000:1000"},
		{name: "host-network job", hostNetwork: true, wantNet: "host", wantCaps: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := h.job("read", h.cfg.CABundle)
			j.Config.HostNetwork = tt.hostNetwork
			h.add(j)
			if a := h.waitState(j.ID, host.StateDown, host.StateCrashed); a.State != host.StateDown {
				t.Fatalf("reading the CA bundle in the job: %s: %s", a.State, h.logText(j.ID, ""))
			}
			if !strings.Contains(h.logText(j.ID, host.StreamStdout), "BEGIN CERTIFICATE") {
				t.Fatal("job does not see the host's CA bundle")
			}
			info, err := h.docker.ContainerInspect(context.Background(), "flynn-"+j.ID)
			if err != nil {
				t.Fatal(err)
			}
			hc := info.HostConfig
			if hc.Privileged || len(hc.CapDrop) != 1 || hc.CapDrop[0] != "ALL" || !slices.Contains(hc.SecurityOpt, "no-new-privileges") || string(hc.NetworkMode) != tt.wantNet {
				t.Fatalf("host config: privileged=%v capdrop=%v secopt=%v net=%s", hc.Privileged, hc.CapDrop, hc.SecurityOpt, hc.NetworkMode)
			}
			if got := len(hc.CapAdd) > 0; got != tt.wantCaps {
				t.Fatalf("capabilities kept: %v", hc.CapAdd)
			}
			if info.Config.User != tt.wantUser {
				t.Fatalf("user %q, want %q", info.Config.User, tt.wantUser)
			}
			for _, m := range info.Mounts {
				if strings.Contains(m.Source, "docker.sock") {
					t.Fatalf("docker socket mounted: %+v", m)
				}
				if m.Destination == h.cfg.CABundle && m.RW {
					t.Fatal("CA bundle mounted read-write")
				}
			}
		})
	}
}

// notifyWriter signals once its output contains a string.
type notifyWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func TestAttachClientLeavingStopsItsJob(t *testing.T) {
	h := newTestHost(t, nil)
	j := h.job("sleep")
	ctx, cancel := context.WithCancel(ctxT(t))
	out := &notifyWriter{want: "sleeping", seen: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := h.c.Attach(ctx, &host.AttachRequest{Job: j}, client.AttachIO{Stdout: out, Stderr: io.Discard})
		done <- err
	}()
	select {
	case <-out.seen:
	case <-time.After(30 * time.Second):
		t.Fatal("job never started")
	}
	cancel() // the client goes away (Ctrl-C)
	<-done
	a := h.waitState(j.ID, host.StateDown, host.StateCrashed)
	if a.State != host.StateDown {
		t.Errorf("job after its client left: %s, want down (stopped)", a.State)
	}
}
