package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/controllertest"
	"github.com/openflynn/flynn/controller/server"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/logaggregator"
	logclient "github.com/openflynn/flynn/logaggregator/client"
	logserver "github.com/openflynn/flynn/logaggregator/server"
	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/pgtest"
)

// One Postgres server for the package; every test gets its own database.
var pg pgtest.Shared

func TestMain(m *testing.M) {
	if os.Getenv(execAsFlynn) != "" {
		os.Exit(runAsFlynn())
	}
	goleak.VerifyTestMain(pg.Main(m))
}

// execAsFlynn, set in the environment of this test binary, makes it the
// flynn command itself, configured by $FLYNNRC, so that tests can have
// shell scripts (the completion scripts) run it as they would run flynn.
const execAsFlynn = "FLYNN_CLI_TEST_EXEC"

func runAsFlynn() int {
	env := &Env{ConfigPath: os.Getenv("FLYNNRC"), Version: "v-test", Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	return Run(context.Background(), os.Args, env)
}

const testKey = "test-controller-key"

// harness is a real controller on a fresh database, and a CLI environment
// (config file, home, working directory) configured to use it.
type harness struct {
	t      testing.TB
	api    *client.Client
	url    string
	runner *fakeRunner
	env    Env
}

// newController starts a controller on a fresh database and returns its
// handler's server; tls serves it over TLS, offering HTTP/2 as the router
// does.
func newController(t testing.TB, tls bool) (*httptest.Server, *fakeRunner) {
	t.Helper()
	url := pg.Server(t).NewDatabase(t)
	runner := &fakeRunner{logs: map[string][]host.LogLine{}}
	// Registered first, so it runs last: the runner's attach goroutines end
	// once the controller has dropped its connections.
	t.Cleanup(runner.wg.Wait)
	// Deployments complete at once, as a scheduler would make them, but
	// those of apps a test deploys itself (fakeDeployer).
	completes := func(d *controller.Deployment) bool {
		_, own := runner.ownDeploys.Load(d.AppID)
		return !own
	}
	// The app logs come from a log aggregator of the runner's.
	runner.appLogs = logserver.NewStore(logaggregator.DefaultLinesPerApp, logserver.DefaultBytesPerApp)
	agg := httptest.NewServer(logserver.NewHandler(runner.appLogs, "", metrics.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(agg.Close)
	// The routers' metrics are the runner's too (metrics_test.go).
	runner.routerMetrics = &fakeRouterMetrics{}
	ctrl := controllertest.New(t, url, controllertest.Options{Key: testKey, Runner: runner, Logs: logclient.New(agg.URL, "", nil), RouterMetrics: runner.routerMetrics, KeepAlive: time.Second, TLS: tls, CompleteDeployments: completes})
	hs := ctrl.HTTP
	return hs, runner
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	hs, runner := newController(t, false)
	h := &harness{t: t, api: client.New(hs.URL, testKey), url: hs.URL, runner: runner}
	t.Cleanup(func() { h.api = nil })
	dir := t.TempDir()
	h.env = Env{
		ConfigPath: filepath.Join(dir, ".flynnrc"),
		Home:       filepath.Join(dir, "home"),
		Dir:        filepath.Join(dir, "work"),
		Version:    "v-test",
		Now:        func() time.Time { return time.Now() },
	}
	for _, d := range []string{h.env.Home, h.env.Dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := &config.File{}
	if err := f.Add(&config.Cluster{Name: "test", Domain: "example.test", ControllerURL: hs.URL, Key: testKey, GitHost: "127.0.0.1:2222"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(h.env.ConfigPath); err != nil {
		t.Fatal(err)
	}
	return h
}

// result is what one CLI run printed and its exit status.
type result struct {
	stdout, stderr string
	code           int
}

// run runs the CLI with args and no input.
func (h *harness) run(args ...string) result { return h.runInput("", args...) }

// runInput runs the CLI with args and stdin.
func (h *harness) runInput(stdin string, args ...string) result {
	h.t.Helper()
	var stdout, stderr bytes.Buffer
	env := h.env
	env.Stdin, env.Stdout, env.Stderr = strings.NewReader(stdin), &stdout, &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := Run(ctx, append([]string{"flynn"}, args...), &env)
	return result{stdout.String(), stderr.String(), code}
}

// ok runs the CLI and fails the test unless it succeeds.
func (h *harness) ok(args ...string) string {
	h.t.Helper()
	res := h.run(args...)
	if res.code != 0 {
		h.t.Fatalf("flynn %s: exit %d, stderr %q", strings.Join(args, " "), res.code, res.stderr)
	}
	return res.stdout
}

// fails runs the CLI, wants exit status 1 and one line on stderr that
// contains want, and returns that line.
func (h *harness) fails(want string, args ...string) string {
	h.t.Helper()
	res := h.run(args...)
	if res.code != 1 {
		h.t.Fatalf("flynn %s: exit %d (stdout %q, stderr %q), want 1", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	if !strings.HasPrefix(res.stderr, "flynn: ") || strings.Count(res.stderr, "\n") != 1 || !strings.Contains(res.stderr, want) {
		h.t.Fatalf("flynn %s: stderr %q, want one line \"flynn: …%s…\"", strings.Join(args, " "), res.stderr, want)
	}
	return res.stderr
}

func (h *harness) app(name string) *controller.App {
	h.t.Helper()
	app := &controller.App{Name: name}
	if err := h.api.CreateApp(context.Background(), app); err != nil {
		h.t.Fatalf("create app %q: %v", name, err)
	}
	return app
}

// deploy creates a release of app with "web" and "worker" process types
// and env, and makes it current.
func (h *harness) deploy(app *controller.App, env map[string]string) *controller.Release {
	h.t.Helper()
	ctx := context.Background()
	a := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "flynn/slugrunner:test"}
	if err := h.api.CreateArtifact(ctx, a); err != nil {
		h.t.Fatalf("create artifact: %v", err)
	}
	rel := &controller.Release{
		AppID:      app.ID,
		ArtifactID: a.ID,
		Env:        env,
		Processes: map[string]controller.ProcessType{
			"web":    {Cmd: []string{"start", "web"}, Ports: []controller.Port{{Proto: "tcp"}}, Service: app.Name + "-web"},
			"worker": {Cmd: []string{"start", "worker"}},
		},
	}
	if err := h.api.CreateRelease(ctx, rel); err != nil {
		h.t.Fatalf("create release: %v", err)
	}
	if _, err := h.api.SetAppRelease(ctx, app.ID, rel.ID); err != nil {
		h.t.Fatalf("deploy release: %v", err)
	}
	return rel
}

// fakeRunner runs one-off jobs in memory. An attached job echoes its input
// upper-cased on stdout, writes "bye" on stderr at the end of its input,
// and exits with the status its args name ("exit N"); it records the
// resize frames it got. It serves canned log lines per job id.
type fakeRunner struct {
	mu      sync.Mutex
	specs   []*server.JobSpec
	resizes [][2]uint16
	logs    map[string][]host.LogLine
	// appLogs is what the log aggregator keeps of apps.
	appLogs *logserver.Store
	stopped []string // "hostID/jobID"
	hosts   []*controller.Host
	wg      sync.WaitGroup
	// onStop, when set (setOnStop), is told of each job stopped, in a
	// goroutine of its own: it stands in for the host and the scheduler.
	onStop func(jobID string)
	// ownDeploys holds the ids of apps whose deployments a test carries
	// out itself (fakeDeployer).
	ownDeploys sync.Map
	// routerMetrics is what the routers count of apps' requests.
	routerMetrics *fakeRouterMetrics
}

var (
	_ server.JobRunner    = (*fakeRunner)(nil)
	_ server.JobLogReader = (*fakeRunner)(nil)
	_ server.JobStopper   = (*fakeRunner)(nil)
	_ server.HostLister   = (*fakeRunner)(nil)
)

func (f *fakeRunner) Hosts(context.Context) ([]*controller.Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hosts, nil
}

func (f *fakeRunner) StopJob(_ context.Context, hostID, jobID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = append(f.stopped, hostID+"/"+jobID)
	if f.onStop != nil {
		f.wg.Add(1)
		go func(onStop func(string)) {
			defer f.wg.Done()
			onStop(jobID)
		}(f.onStop)
	}
	return nil
}

func (f *fakeRunner) setOnStop(fn func(jobID string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onStop = fn
}

func (f *fakeRunner) stoppedJobs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.stopped...)
}

func (f *fakeRunner) RunJob(_ context.Context, spec *server.JobSpec) (*controller.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.specs = append(f.specs, spec)
	return &controller.Job{ID: fmt.Sprintf("host1-00000000-0000-0000-0000-%012d", len(f.specs)), HostID: "host1", State: controller.JobStateStarting}, nil
}

func (f *fakeRunner) RunAttached(ctx context.Context, spec *server.JobSpec) (*controller.Job, io.ReadWriteCloser, error) {
	job, err := f.RunJob(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	status := 0
	if len(spec.Job.Args) == 2 && spec.Job.Args[0] == "exit" {
		fmt.Sscan(spec.Job.Args[1], &status)
	}
	ours, theirs := net.Pipe()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer ours.Close()
		for {
			fr, err := host.ReadFrame(ours)
			if err != nil {
				return
			}
			switch fr.Type {
			case host.FrameStdin:
				if host.WriteFrame(ours, host.FrameStdout, bytes.ToUpper(fr.Payload)) != nil {
					return
				}
			case host.FrameResize:
				h, w, _ := host.ParseResize(fr.Payload)
				f.mu.Lock()
				f.resizes = append(f.resizes, [2]uint16{h, w})
				f.mu.Unlock()
			case host.FrameStdinEOF:
				_ = host.WriteFrame(ours, host.FrameStderr, []byte("bye\n"))
				_ = host.WriteFrame(ours, host.FrameExit, host.ExitPayload(status))
				return
			}
		}
	}()
	return job, theirs, nil
}

func (f *fakeRunner) ran() []*server.JobSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*server.JobSpec(nil), f.specs...)
}

func (f *fakeRunner) setLog(jobID string, lines ...host.LogLine) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs[jobID] = lines
}

func (f *fakeRunner) JobLog(_ context.Context, _, jobID string, opts server.JobLogOptions) (server.LogStream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lines, ok := f.logs[jobID]
	if !ok {
		return nil, fmt.Errorf("no log for %s", jobID)
	}
	if opts.Tail > 0 && opts.Tail < len(lines) {
		lines = lines[len(lines)-opts.Tail:]
	}
	return &fakeLogStream{lines: append([]host.LogLine(nil), lines...)}, nil
}

type fakeLogStream struct{ lines []host.LogLine }

func (s *fakeLogStream) Next() (host.LogLine, error) {
	if len(s.lines) == 0 {
		return host.LogLine{}, io.EOF
	}
	l := s.lines[0]
	s.lines = s.lines[1:]
	return l, nil
}

func (s *fakeLogStream) Close() error { return nil }

// squash collapses runs of spaces, so tests read tables without caring
// about column widths.
func squash(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}
