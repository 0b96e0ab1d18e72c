package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
)

const (
	webJob    = "host1-11111111-0000-0000-0000-000000000001"
	workerJob = "host1-22222222-0000-0000-0000-000000000002"
	doneJob   = "host1-33333333-0000-0000-0000-000000000003"
)

// putJobs reports a web job (up), a worker job (up) and a finished one-off
// job of app's release.
func putJobs(t *testing.T, h *harness, app *controller.App, rel *controller.Release) {
	t.Helper()
	exit := 0
	for _, j := range []*controller.Job{
		{ID: webJob, AppID: app.ID, ReleaseID: rel.ID, Type: "web", State: controller.JobStateUp},
		{ID: workerJob, AppID: app.ID, ReleaseID: rel.ID, Type: "worker", State: controller.JobStateUp},
		{ID: doneJob, AppID: app.ID, ReleaseID: rel.ID, State: controller.JobStateDown, ExitStatus: &exit, Args: []string{"rake", "db:migrate"}},
	} {
		if err := h.api.PutJob(context.Background(), j); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPs(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	putJobs(t, h, app, h.deploy(app, nil))

	out := squash(h.ok("-a", "example", "ps"))
	if !strings.HasPrefix(out, "ID TYPE STATE HOST RELEASE AGE COMMAND\n") {
		t.Fatalf("ps header:\n%s", out)
	}
	for _, want := range []string{webJob + " web up host1 v1 ", workerJob + " worker up host1 v1 "} {
		if !strings.Contains(out, want) {
			t.Errorf("ps lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, doneJob) {
		t.Errorf("ps shows a finished job without --all:\n%s", out)
	}
	if out := squash(h.ok("ps", "-a", "example", "--all")); !strings.Contains(out, doneJob+" run down (exit 0) host1 v1 ") || !strings.HasSuffix(out, " rake db:migrate\n") {
		t.Errorf("ps --all:\n%s", out)
	}
	var jobs []*controller.Job
	if err := json.Unmarshal([]byte(h.ok("-a", "example", "--json", "ps")), &jobs); err != nil || len(jobs) != 2 {
		t.Fatalf("ps --json: %d jobs, %v; want 2", len(jobs), err)
	}
}

func TestLog(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	putJobs(t, h, app, h.deploy(app, nil))
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	h.runner.setLog(webJob,
		host.LogLine{Stream: host.StreamStdout, Time: t0, Data: "listening\n"},
		host.LogLine{Stream: host.StreamStderr, Time: t0.Add(2 * time.Second), Data: "GET / 200\n"},
	)
	h.runner.setLog(workerJob, host.LogLine{Stream: host.StreamStdout, Time: t0.Add(time.Second), Data: "working"})
	h.runner.setLog(doneJob, host.LogLine{Stream: host.StreamStdout, Time: t0.Add(-time.Second), Data: "migrated\n"})

	res := h.run("-a", "example", "log", "-j", webJob)
	if res.code != 0 || res.stdout != "listening\n" || res.stderr != "GET / 200\n" {
		t.Fatalf("log -j: %+v, want stdout and stderr kept apart", res)
	}
	want := "2025-01-02T03:04:04Z run.33333333: migrated\n" +
		"2025-01-02T03:04:05Z web.11111111: listening\n" +
		"2025-01-02T03:04:06Z worker.22222222: working\n" +
		"2025-01-02T03:04:07Z web.11111111: GET / 200\n"
	if out := h.ok("-a", "example", "log"); out != want {
		t.Fatalf("log:\n%s\nwant, merged in time order:\n%s", out, want)
	}
	if out := h.ok("-a", "example", "log", "-t", "web", "-n", "1"); out != "2025-01-02T03:04:07Z web.11111111: GET / 200\n" {
		t.Fatalf("log -t web -n 1 = %q", out)
	}
	// -n counts lines in all, not per job.
	if out := h.ok("-a", "example", "log", "-n", "1"); out != "2025-01-02T03:04:07Z web.11111111: GET / 200\n" {
		t.Fatalf("log -n 1 = %q, want the one last line", out)
	}
	if out := h.ok("-a", "example", "log", "-n", "2"); out != "2025-01-02T03:04:06Z worker.22222222: working\n2025-01-02T03:04:07Z web.11111111: GET / 200\n" {
		t.Fatalf("log -n 2 = %q, want the two last lines", out)
	}
	// Following with -n prints the same history once.
	if out := h.ok("-a", "example", "log", "-f", "-n", "2"); out != "2025-01-02T03:04:06Z worker.22222222: working\n2025-01-02T03:04:07Z web.11111111: GET / 200\n" {
		t.Fatalf("log -f -n 2 = %q, want the two last lines once", out)
	}
	// Following reads only running jobs; their streams end here when the
	// fake host's lines run out.
	out := h.ok("-a", "example", "log", "-f")
	if strings.Contains(out, "migrated") || !strings.Contains(out, "web.11111111: listening\n") || !strings.Contains(out, "worker.22222222: working\n") {
		t.Fatalf("log -f:\n%s", out)
	}
	h.fails("no jobs", "-a", "example", "log", "-t", "db")
	h.fails("job not found", "-a", "example", "log", "-j", "host1-nope")
}

// TestKill stops a job through the controller, which asks the job's host
// (here the fake runner) to stop it.
func TestKill(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	putJobs(t, h, app, h.deploy(app, nil))
	if out := h.ok("-a", "example", "kill", webJob); out != "Job "+webJob+" stopped.\n" {
		t.Fatalf("kill printed %q", out)
	}
	if got := h.runner.stoppedJobs(); len(got) != 1 || got[0] != "host1/"+webJob {
		t.Fatalf("runner stopped %q, want [host1/%s]", got, webJob)
	}
	h.fails("not found", "-a", "example", "kill", "host1-nope")
	h.fails("want JOB", "-a", "example", "kill")
}
