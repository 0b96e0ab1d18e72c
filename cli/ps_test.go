package cli

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/server"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/syncbuf"
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

var _ server.JobStatsReader = (*fakeRunner)(nil)

// JobStats reads the web job's stats alone: the worker's host reads none.
func (f *fakeRunner) JobStats(_ context.Context, _ string, jobIDs []string) (map[string]*host.JobStats, error) {
	out := map[string]*host.JobStats{}
	if slices.Contains(jobIDs, webJob) {
		out[webJob] = &host.JobStats{CPUPercent: 12.5, MemoryBytes: 64 << 20, MemoryLimitBytes: 256 << 20}
	}
	return out, nil
}

func TestPs(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	putJobs(t, h, app, h.deploy(app, nil))

	out := squash(h.ok("-a", "example", "ps"))
	if !strings.HasPrefix(out, "ID TYPE STATE HOST RELEASE AGE CPU MEM COMMAND\n") {
		t.Fatalf("ps header:\n%s", out)
	}
	// The fake host reads the web job's stats and not the worker's.
	for _, want := range []struct{ prefix, suffix string }{
		{webJob + " web up host1 v1 ", " 12.5% 64.0MiB/256MiB -"},
		{workerJob + " worker up host1 v1 ", " - - -"},
	} {
		if !slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool {
			return strings.HasPrefix(l, want.prefix) && strings.HasSuffix(l, want.suffix)
		}) {
			t.Errorf("ps lacks a line %q…%q:\n%s", want.prefix, want.suffix, out)
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
	rel := h.deploy(app, nil)
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	line := func(job, typ, stream string, at time.Duration, data string) logaggregator.Line {
		return logaggregator.Line{AppID: app.ID, ReleaseID: rel.ID, JobID: job, ProcessType: typ, Stream: stream, Time: t0.Add(at), Data: data}
	}
	h.runner.appLogs.Append([]logaggregator.Line{
		line(doneJob, "", "stdout", -time.Second, "migrated\n"),
		line(webJob, "web", "stdout", 0, "listening\n"),
		line(workerJob, "worker", "stdout", time.Second, "working"),
		line(webJob, "web", "stderr", 2*time.Second, "GET / 200\n"),
		line("router-job", logaggregator.ProcessTypeRouter, "stdout", 3*time.Second, "at=info method=GET path=\"/\" status=200\n"),
		{AppID: "another-app", JobID: webJob, ProcessType: "web", Time: t0, Data: "not ours\n"},
	})

	res := h.run("-a", "example", "log", "-j", webJob)
	if res.code != 0 || res.stdout != "listening\n" || res.stderr != "GET / 200\n" {
		t.Fatalf("log -j: %+v, want stdout and stderr kept apart", res)
	}
	want := "2025-01-02T03:04:04Z run.33333333: migrated\n" +
		"2025-01-02T03:04:05Z web.11111111: listening\n" +
		"2025-01-02T03:04:06Z worker.22222222: working\n" +
		"2025-01-02T03:04:07Z web.11111111: GET / 200\n" +
		"2025-01-02T03:04:08Z router: at=info method=GET path=\"/\" status=200\n"
	if out := h.ok("-a", "example", "log"); out != want {
		t.Fatalf("log:\n%s\nwant, in the order they came:\n%s", out, want)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-t", "web", "-n", "1"}, "2025-01-02T03:04:07Z web.11111111: GET / 200\n"},
		{[]string{"-n", "2"}, "2025-01-02T03:04:07Z web.11111111: GET / 200\n2025-01-02T03:04:08Z router: at=info method=GET path=\"/\" status=200\n"},
		{[]string{"--since", "2025-01-02T03:04:07Z", "-t", "web"}, "2025-01-02T03:04:07Z web.11111111: GET / 200\n"},
		{[]string{"-t", "db"}, ""},
	}
	for _, tt := range tests {
		if out := h.ok(append([]string{"-a", "example", "log"}, tt.args...)...); out != tt.want {
			t.Errorf("log %s = %q, want %q", strings.Join(tt.args, " "), out, tt.want)
		}
	}
	h.fails("--since", "-a", "example", "log", "--since", "yesterday")
	h.fails("--lines", "-a", "example", "log", "-n", "-1")
}

// TestLogFollow: -f prints the history once, then lines of jobs that
// start later, until interrupted.
func TestLogFollow(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	h.runner.appLogs.Append([]logaggregator.Line{{AppID: app.ID, JobID: webJob, ProcessType: "web", Time: time.Now(), Data: "before\n"}})
	var out syncbuf.Buffer
	env := h.env
	env.Stdin, env.Stdout, env.Stderr = strings.NewReader(""), &out, io.Discard
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- Run(ctx, []string{"flynn", "-a", "example", "log", "-f"}, &env) }()
	poll.Until(t, 10*time.Second, "the history", func() bool { return strings.Contains(out.String(), "web.11111111: before\n") })
	h.runner.appLogs.Append([]logaggregator.Line{{AppID: app.ID, JobID: workerJob, ProcessType: "worker", Time: time.Now(), Data: "a job started later\n"}})
	poll.Until(t, 10*time.Second, "the new job's line", func() bool { return strings.Contains(out.String(), "worker.22222222: a job started later\n") })
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("log -f ended with %d", code)
	}
	if n := strings.Count(out.String(), "before"); n != 1 {
		t.Errorf("the history printed %d times:\n%s", n, out.String())
	}
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
