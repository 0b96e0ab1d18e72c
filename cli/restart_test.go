package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
)

// restartFixture is an app whose formation wants web=2 worker=1, with
// those jobs up (oldest first: web 1, web 2, worker 3), and a one-off job
// running that restart leaves alone.
func restartFixture(t *testing.T, h *harness) (*controller.App, *controller.Release, []string) {
	t.Helper()
	ctx := context.Background()
	app := h.app("example")
	rel := h.deploy(app, nil)
	if err := h.api.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: map[string]int{"web": 2, "worker": 1}}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, typ := range []string{"web", "web", "worker", ""} {
		j := &controller.Job{ID: fmt.Sprintf("host1-%d%d%d%d%d%d%d%d-0000-0000-0000-000000000000", i, i, i, i, i, i, i, i), AppID: app.ID, ReleaseID: rel.ID, Type: typ, HostID: "host1", State: controller.JobStateUp}
		if err := h.api.PutJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		if typ != "" {
			ids = append(ids, j.ID)
		}
	}
	return app, rel, ids
}

// replacingScheduler stands in for the host and the scheduler: a stopped
// job goes down, and a job of its type replaces it, up, or crashed with a
// line of output when its type is crashType.
func replacingScheduler(t *testing.T, h *harness, app *controller.App, rel *controller.Release, crashType string) {
	t.Helper()
	api := h.api
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var n atomic.Int32
	h.runner.setOnStop(func(jobID string) {
		j, err := api.Job(ctx, app.ID, jobID)
		if err != nil {
			return
		}
		j.State = controller.JobStateDown
		if api.PutJob(ctx, j) != nil {
			return
		}
		id := fmt.Sprintf("host1-eeeeeeee-0000-0000-0000-%012d", n.Add(1))
		next := &controller.Job{ID: id, AppID: app.ID, ReleaseID: rel.ID, Type: j.Type, HostID: "host1", State: controller.JobStateStarting}
		if api.PutJob(ctx, next) != nil {
			return
		}
		next.State = controller.JobStateUp
		if j.Type == crashType {
			h.runner.setLog(id, host.LogLine{Stream: host.StreamStderr, Time: time.Now(), Data: "Error: Cannot find module 'express'\n"})
			exit := 1
			next.State, next.ExitStatus = controller.JobStateCrashed, &exit
		}
		_ = api.PutJob(ctx, next)
	})
}

// stoppedIDs are the ids of the jobs the runner stopped, in order.
func stoppedIDs(h *harness) []string {
	var ids []string
	for _, s := range h.runner.stoppedJobs() {
		_, id, _ := strings.Cut(s, "/")
		ids = append(ids, id)
	}
	return ids
}

func TestRestart(t *testing.T) {
	h := newHarness(t)
	app, rel, ids := restartFixture(t, h)
	replacingScheduler(t, h, app, rel, "")

	out := h.ok("-a", "example", "restart")
	for _, want := range []string{"Restarting 3 jobs of example…\n", "  Stopped web.00000000 (1/3)\n", "  Stopped web.11111111 (2/3)\n", "  Stopped worker.22222222 (3/3)\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("restart printed no %q:\n%s", want, out)
		}
	}
	if !strings.HasPrefix(out, "Restarting ") || !strings.Contains(out, "\nRestarted example: 3 jobs in ") {
		t.Errorf("restart printed:\n%s", out)
	}
	// One at a time, each after its predecessor's replacement was up, and
	// never the one-off job.
	if got := stoppedIDs(h); !slices.Equal(got, ids) {
		t.Fatalf("stopped %v, want %v", got, ids)
	}

	// A type alone: the replacements are the web jobs now.
	out = h.ok("-a", "example", "restart", "web")
	if !strings.HasPrefix(out, "Restarting 2 jobs of example…\n") || !strings.Contains(out, "Restarted example: 2 jobs in ") || strings.Contains(out, "worker") {
		t.Errorf("restart web printed:\n%s", out)
	}
	if got := stoppedIDs(h)[3:]; len(got) != 2 || !strings.HasPrefix(got[0], "host1-eeeeeeee-") {
		t.Errorf("restart web stopped %v, want the two replacement web jobs", got)
	}

	h.fails(`example has no process type "db" (it has: web, worker)`, "-a", "example", "restart", "db")
	h.fails("want at most one TYPE", "-a", "example", "restart", "web", "worker")
}

func TestRestartNoWait(t *testing.T) {
	h := newHarness(t)
	_, _, ids := restartFixture(t, h)
	out := h.ok("-a", "example", "restart", "--no-wait")
	if !strings.HasSuffix(out, "  Stopped worker.22222222 (3/3)\nStopped 3 jobs of example; the scheduler replaces them.\n") {
		t.Errorf("restart --no-wait printed:\n%s", out)
	}
	if got := stoppedIDs(h); !slices.Equal(got, ids) {
		t.Fatalf("stopped %v, want %v", got, ids)
	}
}

// A replacement that crashes ends the restart with its report; the jobs
// not yet restarted keep running.
func TestRestartStopsOnCrash(t *testing.T) {
	h := newHarness(t)
	app, rel, ids := restartFixture(t, h)
	replacingScheduler(t, h, app, rel, "web")
	res := h.run("-a", "example", "restart", "--timeout", "20s")
	if res.code != 1 || !strings.Contains(res.stderr, "flynn: restart of example stopped after 1 of 3 jobs: web is crashing: 1 of 1 new jobs exited before they were up") {
		t.Fatalf("restart with a crashing replacement: exit %d, stderr %q", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, "  web.eeeeeeee exited with status 1; its last lines:\n    Error: Cannot find module 'express'\n") {
		t.Errorf("restart did not report the crash:\n%s", res.stdout)
	}
	if got := stoppedIDs(h); !slices.Equal(got, ids[:1]) {
		t.Errorf("stopped %v, want only %v", got, ids[:1])
	}
}

func TestRestartTimeout(t *testing.T) {
	h := newHarness(t)
	restartFixture(t, h)
	// No scheduler: no replacement comes.
	h.fails("restart of example stopped after 1 of 2 jobs: timed out after 300ms waiting for web=2 (up: web=1)", "-a", "example", "restart", "web", "--timeout", "300ms")
}

func TestRestartNothingToRestart(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	if out := h.ok("-a", "example", "restart"); out != "example has no running jobs; nothing to restart.\n" {
		t.Errorf("restart before any release printed %q", out)
	}
	h.fails(`example has no process type "web" (it has: none)`, "-a", "example", "restart", "web")
	h.deploy(app, nil)
	if out := h.ok("-a", "example", "restart", "web"); out != "example has no running web jobs; nothing to restart.\n" {
		t.Errorf("restart web without jobs printed %q", out)
	}
}
