package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
)

// fakeScheduler stands in for the scheduler: on every formation change of
// app it reports jobs (starting, then up, or down) until the counts match.
func fakeScheduler(t *testing.T, h *harness, app *controller.App) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	events, err := h.api.StreamEvents(ctx, controller.EventFilter{AppID: app.ID, ObjectTypes: []string{controller.ObjectTypeFormation}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	go func() {
		defer close(done)
		running := map[string][]*controller.Job{}
		n := 0
		for e := range events {
			var f controller.Formation
			if err := json.Unmarshal(e.Data, &f); err != nil {
				t.Errorf("formation event: %v", err)
				continue
			}
			for typ, want := range f.Processes {
				for len(running[typ]) < want {
					n++
					j := &controller.Job{ID: fmt.Sprintf("host1-00000000-0000-0000-0000-%012d", n), AppID: app.ID, ReleaseID: f.ReleaseID, Type: typ, State: controller.JobStateStarting}
					if err := h.api.PutJob(ctx, j); err != nil {
						return
					}
					j.State = controller.JobStateUp
					if err := h.api.PutJob(ctx, j); err != nil {
						return
					}
					running[typ] = append(running[typ], j)
				}
				for len(running[typ]) > want {
					j := running[typ][len(running[typ])-1]
					running[typ] = running[typ][:len(running[typ])-1]
					j.State = controller.JobStateDown
					if err := h.api.PutJob(ctx, j); err != nil {
						return
					}
				}
			}
		}
	}()
}

func TestScale(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	h.fails("no release yet", "-a", "example", "scale")
	rel := h.deploy(app, nil)

	if out := h.ok("-a", "example", "scale"); out != "web=0 worker=0\n" {
		t.Fatalf("scale without arguments printed %q", out)
	}
	if out := h.ok("-a", "example", "scale", "--no-wait", "worker=2"); out != "Scaled example to web=0 worker=2.\n" {
		t.Fatalf("scale --no-wait printed %q", out)
	}
	var counts map[string]int
	if err := json.Unmarshal([]byte(h.ok("scale", "-a", "example", "--json")), &counts); err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"web": 0, "worker": 2}; !reflect.DeepEqual(counts, want) {
		t.Fatalf("scale --json = %v, want %v", counts, want)
	}

	fakeScheduler(t, h, app)
	out := h.ok("-a", "example", "scale", "web=3", "worker=1")
	if !strings.HasPrefix(out, "Scaling example to web=3 worker=1…\n") || !strings.Contains(out, "Scaled example to web=3 worker=1 in ") {
		t.Fatalf("scale printed:\n%s", out)
	}
	if !strings.Contains(out, "  web 0/3, worker 0/1 up\n") {
		t.Fatalf("scale printed no progress:\n%s", out)
	}
	f, err := h.api.Formation(context.Background(), app.ID, rel.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"web": 3, "worker": 1}; !reflect.DeepEqual(f.Processes, want) {
		t.Fatalf("formation = %v, want %v", f.Processes, want)
	}
	jobs, err := h.api.Jobs(context.Background(), app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := upCounts(jobsByID(jobs), rel.ID, f.Processes, nil); !reflect.DeepEqual(got, f.Processes) {
		t.Fatalf("jobs up after scale = %v, want %v", got, f.Processes)
	}
	// Scaling down waits for jobs to stop too.
	h.ok("-a", "example", "scale", "web=1")

	h.fails(`no process type "db"`, "-a", "example", "scale", "db=1")
	h.fails(`"web=x" is not TYPE=N`, "-a", "example", "scale", "web=x")
}

func TestScaleTimeout(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	h.deploy(app, nil)
	// No scheduler: the jobs never come up.
	h.fails("timed out after 300ms waiting for web=2 worker=0 (up: web=0 worker=0)", "-a", "example", "scale", "--timeout", "300ms", "web=2")
}

func jobsByID(jobs []*controller.Job) map[string]*controller.Job {
	m := map[string]*controller.Job{}
	for _, j := range jobs {
		m[j.ID] = j
	}
	return m
}

// crashingScheduler stands in for a scheduler whose jobs of type typ crash
// at once with exit status 1 after writing a line; other types come up.
// It signals on the returned channel (when nobody waits, not at all) each
// time it has crashed the jobs of a formation.
func crashingScheduler(t *testing.T, h *harness, app *controller.App, typ string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	events, err := h.api.StreamEvents(ctx, controller.EventFilter{AppID: app.ID, ObjectTypes: []string{controller.ObjectTypeFormation}})
	if err != nil {
		t.Fatal(err)
	}
	done, crashedAll := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	go func() {
		defer close(done)
		n := 0
		for e := range events {
			var f controller.Formation
			if err := json.Unmarshal(e.Data, &f); err != nil {
				t.Errorf("formation event: %v", err)
				continue
			}
			// Each crashed job is replaced, as the scheduler does, so a
			// crashing type never stops producing crashes.
			for i := 0; i < f.Processes[typ]*2; i++ {
				n++
				id := fmt.Sprintf("host1-cccccccc-0000-0000-0000-%012d", n)
				h.runner.setLog(id, host.LogLine{Stream: host.StreamStderr, Time: time.Now(), Data: "Error: Cannot find module 'express'\n"})
				exit := 1
				for _, st := range []string{controller.JobStateStarting, controller.JobStateCrashed} {
					j := &controller.Job{ID: id, AppID: app.ID, ReleaseID: f.ReleaseID, Type: typ, HostID: "host1", State: st}
					if st == controller.JobStateCrashed {
						j.ExitStatus = &exit
					}
					if err := h.api.PutJob(ctx, j); err != nil {
						return
					}
				}
			}
			select {
			case crashedAll <- struct{}{}:
			default:
			}
		}
	}()
	return crashedAll
}

// Jobs that crash before scale looks at the app's jobs again are still the
// scale's crashes (they crashed before a listing made after the change:
// CI, under load, timed out waiting for them). A proxy holds any job
// listing that follows the formation's change until the scheduler has
// crashed every job.
func TestScaleCountsCrashesBeforeItLooks(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	h.deploy(app, nil)
	crashedAll := crashingScheduler(t, h, app, "worker")
	target, err := url.Parse(h.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1 // event streams
	var changed atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/jobs") && changed.Load() {
			select {
			case <-crashedAll:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/formations/") {
			changed.Store(true)
		}
	}))
	t.Cleanup(srv.Close)
	f := &config.File{}
	if err := f.Add(&config.Cluster{Name: "test", Domain: "example.test", ControllerURL: srv.URL, Key: testKey, GitHost: "127.0.0.1:2222"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(h.env.ConfigPath); err != nil {
		t.Fatal(err)
	}
	res := h.run("-a", "example", "scale", "--timeout", "10s", "worker=2")
	if res.code != 1 || !strings.Contains(res.stderr, "worker is crashing: 2 of 2 new jobs exited before they were up") {
		t.Fatalf("scale of a type that crashes before scale looks: exit %d, stderr %q", res.code, res.stderr)
	}
}

// A scale whose jobs crash reports each crash with its exit status and
// last lines, and gives up once every new job has crashed: no waiting for
// the timeout, no blaming capacity.
func TestScaleReportsCrashes(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	h.deploy(app, nil)
	crashingScheduler(t, h, app, "worker")
	began := time.Now()
	res := h.run("-a", "example", "scale", "--timeout", "20s", "worker=2")
	if res.code != 1 || !strings.Contains(res.stderr, "worker is crashing: 2 of 2 new jobs exited before they were up") {
		t.Fatalf("scale of a crashing type: exit %d, stderr %q", res.code, res.stderr)
	}
	if strings.Contains(res.stderr, "capacity") {
		t.Errorf("scale blamed capacity: %q", res.stderr)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("scale took %s; it must stop once every new job crashed", took)
	}
	if !strings.Contains(res.stdout, "  worker.cccccccc exited with status 1; its last lines:\n    Error: Cannot find module 'express'\n") {
		t.Errorf("scale did not report the crash and its output:\n%s", res.stdout)
	}
}

// A job that never started (its host refused it) is reported with the
// host's reason, once, and without asking for output it never wrote.
func TestCrashReportNamesAFailedStart(t *testing.T) {
	var out bytes.Buffer
	cr := newCrashReporter(nil, &controller.App{ID: "a"}, &out) // no API: nothing is asked
	j := &controller.Job{ID: "host1-0123abcd-0000-0000-0000-000000000001", Type: "web", State: controller.JobStateFailed,
		Error: `image "flynn/nope" is not on this host`}
	if !cr.report(t.Context(), j) {
		t.Fatal("the failed start was not reported")
	}
	if cr.report(t.Context(), j) {
		t.Error("reported twice")
	}
	if want := "  web.0123abcd failed to start: image \"flynn/nope\" is not on this host\n"; out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
}
