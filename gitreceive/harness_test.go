package gitreceive_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	gossh "golang.org/x/crypto/ssh"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/controllertest"
	"github.com/openflynn/flynn/controller/server"
	"github.com/openflynn/flynn/gitreceive"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/pgtest"
	"github.com/openflynn/flynn/pkg/random"
	"github.com/openflynn/flynn/pkg/syncbuf"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// The test binary doubles as the pre-receive hook: git runs it with the
// server's variables set.
func TestMain(m *testing.M) {
	if gitreceive.IsHook(os.Getenv) {
		os.Exit(gitreceive.RunHook(os.Stdin, os.Stdout, os.Stderr, os.Getenv))
	}
	goleak.VerifyTestMain(pg.Main(m))
}

// One Postgres server for the package; every test gets its own database.
var pg pgtest.Shared

const (
	controllerKey    = "test-controller-key"
	slugbuilderImage = "flynn/slugbuilder:test"
	slugrunnerImage  = "flynn/slugrunner:test"
	blobstoreURL     = "http://blobstore.test"
)

// harness is a real controller (pgtest) whose job runner runs fakeBuild
// scripts, a fake scheduler that finishes deployments, and gitreceive.
type harness struct {
	t       *testing.T
	client  *client.Client
	runner  *fakeRunner
	sshAddr string
	keyFile string
	home    string
	// logs is gitreceive's log.
	logs syncbuf.Buffer
	// metrics serves gitreceive's /metrics.
	metrics http.Handler
	// failDeploys makes the fake scheduler fail deployments.
	failDeploys bool
	mu          sync.Mutex
}

// harnessOptions change a harness from the defaults.
type harnessOptions struct {
	// config changes gitreceive's Config before it starts.
	config func(*gitreceive.Config)
	// systemApps are app names the controller reports as system apps to
	// gitreceive (through a proxy that sets App.System in its replies).
	systemApps []string
	// intercept sees each of gitreceive's controller requests before the
	// controller does (through the proxy): a test acts at that moment.
	intercept func(*http.Request)
	// buildEnv, when set, is what the proxy answers gitreceive's
	// GET /cluster/build-env with, called for each request (nil: 404, as
	// an older controller answers); unset: the controller's own answer.
	buildEnv func() *controller.BuildEnv
	// imageBuilds, when set, answers POST /apps/:id/images/build in the
	// controller's stead (the cluster's Dockerfile builds).
	imageBuilds *fakeImageBuilds
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessWith(t, harnessOptions{})
}

func newHarnessWith(t *testing.T, opts harnessOptions) *harness {
	t.Helper()
	testdeps.Short(t)
	testdeps.LookPath(t, "git")
	testdeps.LookPath(t, "ssh")
	dbURL := pg.Server(t).NewDatabase(t)
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("GITRECEIVE_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	runner := newFakeRunner(t)
	ctrl := controllertest.New(t, dbURL, controllertest.Options{Key: controllerKey, Logger: logger, Runner: runner})
	h := &harness{t: t, client: ctrl.Client(), runner: runner, home: t.TempDir()}

	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// Runs before the controller closes: the fake scheduler and builds
	// use it.
	t.Cleanup(func() {
		stopBG()
		wg.Wait()
		runner.wait()
	})
	h.startFakeScheduler(bg, &wg)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	controllerURL := ctrl.URL()
	if opts.imageBuilds != nil {
		opts.imageBuilds.store = ctrl.Store
	}
	if len(opts.systemApps) > 0 || opts.intercept != nil || opts.buildEnv != nil || opts.imageBuilds != nil {
		controllerURL = controllerProxy(t, controllerURL, opts)
	}
	cfg := gitreceive.Config{
		StateDir:         t.TempDir(),
		ControllerURL:    controllerURL,
		ControllerKey:    controllerKey,
		BlobstoreURL:     blobstoreURL,
		SlugbuilderImage: slugbuilderImage,
		SlugrunnerImage:  slugrunnerImage,
		HookCommand:      []string{exe},
		DeployTimeout:    30 * time.Second,
	}
	if opts.config != nil {
		opts.config(&cfg)
	}
	// gitreceive's log is kept for tests that wait on what it did.
	var logOut io.Writer = &h.logs
	if os.Getenv("GITRECEIVE_TEST_LOG") != "" {
		logOut = io.MultiWriter(&h.logs, os.Stderr)
	}
	gr, err := gitreceive.New(cfg, slog.New(slog.NewTextHandler(logOut, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.sshAddr = ln.Addr().String()
	h.metrics = gr.MetricsHandler()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := gr.Serve(bg, ln); err != nil {
			t.Errorf("gitreceive: %v", err)
		}
	}()
	h.keyFile = h.newKey(true)
	return h
}

// controllerProxy serves the controller at target as opts say: the apps
// named in systemApps come back with System set, as the controller
// reports the platform's own apps; intercept sees each request first;
// buildEnv answers for the cluster's build settings.
func controllerProxy(t *testing.T, target string, opts harnessOptions) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			if opts.intercept != nil {
				opts.intercept(r.In)
			}
			r.SetURL(u)
		},
		FlushInterval: -1, // event streams pass through as they come
	}
	names := opts.systemApps
	proxy.ModifyResponse = func(resp *http.Response) error {
		name, ok := strings.CutPrefix(resp.Request.URL.Path, "/apps/")
		if resp.Request.Method != http.MethodGet || !ok || !slices.Contains(names, name) || resp.StatusCode != http.StatusOK {
			return nil
		}
		defer resp.Body.Close()
		var app map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&app); err != nil {
			return err
		}
		app["system"] = true
		data, err := json.Marshal(app)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(data))
		resp.ContentLength = int64(len(data))
		resp.Header.Set("Content-Length", strconv.Itoa(len(data)))
		return nil
	}
	handler := http.Handler(proxy)
	if opts.imageBuilds != nil {
		next := handler
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/apps/") && strings.HasSuffix(r.URL.Path, "/images/build") {
				opts.imageBuilds.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	if opts.buildEnv != nil {
		next := handler
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Path == "/cluster/build-env" {
				if be := opts.buildEnv(); be != nil {
					httpjson.Write(w, http.StatusOK, be)
				} else {
					httpjson.WriteError(w, httpjson.NotFound("no such endpoint")) // an older controller
				}
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

// startFakeScheduler completes (or fails) every new pending deployment.
func (h *harness) startFakeScheduler(ctx context.Context, wg *sync.WaitGroup) {
	events, err := h.client.StreamEvents(ctx, controller.EventFilter{ObjectTypes: []string{controller.ObjectTypeDeployment}})
	if err != nil {
		h.t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for e := range events {
			var d controller.Deployment
			if e.Op != controller.OpCreate || json.Unmarshal(e.Data, &d) != nil || d.Status != controller.DeploymentPending {
				continue
			}
			u := controller.DeploymentUpdate{Status: controller.DeploymentComplete}
			h.mu.Lock()
			fail := h.failDeploys
			h.mu.Unlock()
			if fail {
				// The new release's web job crashes (its log is the fake
				// runner's crashLog), then the deployment fails.
				exit := 1
				_ = h.client.PutJob(ctx, &controller.Job{ID: "host1-crash-" + d.ID, AppID: d.AppID, ReleaseID: d.NewReleaseID, Type: "web",
					HostID: "host1", State: controller.JobStateCrashed, ExitStatus: &exit})
				u = controller.DeploymentUpdate{Status: controller.DeploymentFailed, Error: "web job crashed"}
			}
			_, _ = h.client.UpdateDeployment(ctx, d.AppID, d.ID, u)
		}
	}()
}

// newKey writes a new SSH key for the git client; known adds it to the
// controller.
func (h *harness) newKey(known bool) string {
	h.t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		h.t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "test")
	if err != nil {
		h.t.Fatal(err)
	}
	path := filepath.Join(h.t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		h.t.Fatal(err)
	}
	if known {
		sshPub, err := gossh.NewPublicKey(pub)
		if err != nil {
			h.t.Fatal(err)
		}
		if _, err := h.client.CreateKey(h.t.Context(), string(gossh.MarshalAuthorizedKey(sshPub))); err != nil {
			h.t.Fatal(err)
		}
	}
	return path
}

func (h *harness) createApp(name string) *controller.App {
	h.t.Helper()
	app := &controller.App{Name: name}
	if err := h.client.CreateApp(h.t.Context(), app); err != nil {
		h.t.Fatal(err)
	}
	return app
}

// remote is the git URL of an app.
func (h *harness) remote(app string) string {
	host, port, _ := net.SplitHostPort(h.sshAddr)
	return fmt.Sprintf("ssh://git@%s:%s/%s.git", host, port, app)
}

// workdir is a local git repository.
type workdir struct {
	h   *harness
	dir string
	key string
}

func (h *harness) newWorkdir(app string) *workdir {
	h.t.Helper()
	w := &workdir{h: h, dir: h.t.TempDir(), key: h.keyFile}
	w.git("init", "--quiet", "--initial-branch=main")
	w.git("remote", "add", "flynn", h.remote(app))
	return w
}

func (w *workdir) env() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + w.h.home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_SSH_COMMAND=ssh -i " + w.key + " -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=no -o LogLevel=INFO",
	}
}

func (w *workdir) git(args ...string) string {
	w.h.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = w.dir
	cmd.Env = w.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.h.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// commit writes files and commits them.
func (w *workdir) commit(msg string, files map[string]string) string {
	w.h.t.Helper()
	for name, content := range files {
		p := filepath.Join(w.dir, name)
		if content == "" {
			os.Remove(p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			w.h.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			w.h.t.Fatal(err)
		}
	}
	w.git("add", "-A")
	w.git("commit", "--quiet", "--allow-empty", "-m", msg)
	return strings.TrimSpace(w.git("rev-parse", "HEAD"))
}

// pushCmd returns `git push flynn <args>` ready to start, in its own
// process group so a test can hang up like Ctrl-C does.
func (w *workdir) pushCmd(out *syncbuf.Buffer, args ...string) *exec.Cmd {
	cmd := exec.Command("git", append([]string{"push", "--progress", "flynn"}, args...)...)
	cmd.Dir = w.dir
	cmd.Env = w.env()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// push runs git push and returns its output, how long it took and its
// error.
func (w *workdir) push(args ...string) (string, time.Duration, error) {
	w.h.t.Helper()
	var out syncbuf.Buffer
	start := time.Now()
	err := w.pushCmd(&out, args...).Run()
	return out.String(), time.Since(start), err
}

// pushOK runs git push, fails t when it fails, and returns its output.
func (w *workdir) pushOK(t *testing.T, args ...string) string {
	t.Helper()
	out, _, err := w.push(args...)
	if err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	return out
}

// fakeBuild stands in for slugbuilder: it unpacks the tree from stdin,
// fails when the app has fail.txt, hangs while it has hang.txt, waits for
// $GATE_DIR/open when it has gate.txt, leaves an app with a Dockerfile to
// it (slugbuilder.DockerfileLine), keeps the tree in $SLUG_DIR as the
// slug, and reports the Procfile's types.
const fakeBuild = `set -e
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
tar -x -C "$d"
echo "-----> Fake buildpack app detected"
if [ -f "$d/fail.txt" ]; then echo " !     $(cat "$d/fail.txt")"; exit 1; fi
if [ -f "$d/hang.txt" ]; then echo "-----> Hanging"; while :; do sleep 0.05; done; fi
if [ -f "$d/gate.txt" ]; then echo "-----> At the gate"; while [ ! -f "$GATE_DIR/open" ]; do sleep 0.02; done; fi
if [ -f "$d/Dockerfile" ]; then echo "-----> No buildpack matches; building the Dockerfile"; echo FLYNN_BUILD_DOCKERFILE; exit 0; fi
echo "-----> Compiled $(find "$d" -type f | wc -l | tr -d ' ') files" >&2
slug=$(printf '%s' "$SLUG_PUT_URL" | sed 's/?.*//; s#.*/##')
cp -R "$d" "$SLUG_DIR/$slug"
types=$(sed -n 's/^\([a-z0-9]*\):.*/"\1":"x"/p' "$d/Procfile" 2>/dev/null | paste -sd, -)
printf 'FLYNN_PROCESS_TYPES {%s}\n' "$types"
`

// fakeSlugrunner stands in for slugrunner: in the slug fakeBuild kept for
// $SLUG_URL it runs `start TYPE` as the Procfile says, or its one
// argument as a command line.
const fakeSlugrunner = `set -e
slug=$(printf '%s' "$SLUG_URL" | sed 's/?.*//; s#.*/##')
cd "$SLUG_DIR/$slug"
if [ "$1" = start ]; then cmd=$(sed -n "s/^$2:[[:space:]]*//p" Procfile); else cmd=$1; fi
exec sh -c "$cmd"
`

// fakeRunner is the controller's JobRunner: attached jobs of the
// slugbuilder image run fakeBuild with sh, those of the slugrunner image
// fakeSlugrunner, those of an image artifact (docker-archive) their args
// on this host, speaking the host's frame protocol.
type fakeRunner struct {
	t       *testing.T
	gateDir string
	slugDir string
	wg      sync.WaitGroup

	mu        sync.Mutex
	specs     []*server.JobSpec
	active    int
	maxActive int
	cancelled int
	finished  int
}

var (
	_ server.JobRunner    = (*fakeRunner)(nil)
	_ server.JobLogReader = (*fakeRunner)(nil)
)

// crashLog is the output of every job the fake scheduler crashes.
const crashLog = "Error: Cannot find module 'express'\n"

// JobLog serves crashLog for the fake scheduler's crashed jobs.
func (f *fakeRunner) JobLog(_ context.Context, _, jobID string, _ server.JobLogOptions) (server.LogStream, error) {
	if !strings.HasPrefix(jobID, "host1-crash-") {
		return nil, fmt.Errorf("no log for %s", jobID)
	}
	return &lineStream{lines: []host.LogLine{{Stream: host.StreamStderr, Time: time.Now(), Data: crashLog}}}, nil
}

// lineStream is a log of canned lines.
type lineStream struct{ lines []host.LogLine }

func (s *lineStream) Next() (host.LogLine, error) {
	if len(s.lines) == 0 {
		return host.LogLine{}, io.EOF
	}
	l := s.lines[0]
	s.lines = s.lines[1:]
	return l, nil
}

func (s *lineStream) Close() error { return nil }

func newFakeRunner(t *testing.T) *fakeRunner {
	return &fakeRunner{t: t, gateDir: t.TempDir(), slugDir: t.TempDir()}
}

func (f *fakeRunner) wait() { f.wg.Wait() }

func (f *fakeRunner) RunJob(context.Context, *server.JobSpec) (*controller.Job, error) {
	return nil, fmt.Errorf("fake runner: only attached jobs")
}

func (f *fakeRunner) RunAttached(_ context.Context, spec *server.JobSpec) (*controller.Job, io.ReadWriteCloser, error) {
	env := []string{"PATH=" + os.Getenv("PATH"), "GATE_DIR=" + f.gateDir, "SLUG_DIR=" + f.slugDir}
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "sh", "-c", fakeBuild)
	switch {
	case spec.Artifact.URI == slugrunnerImage:
		cmd = exec.CommandContext(ctx, "sh", append([]string{"-c", fakeSlugrunner, "slugrunner"}, spec.Job.Args...)...)
	case spec.Artifact.Type == controller.ArtifactTypeDockerArchive && len(spec.Job.Args) > 0:
		cmd = exec.CommandContext(ctx, spec.Job.Args[0], spec.Job.Args[1:]...)
		cmd.Dir = f.slugDir
	}
	cmd.Env = env
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, nil, err
	}
	f.mu.Lock()
	f.specs = append(f.specs, spec)
	f.active++
	f.maxActive = max(f.maxActive, f.active)
	id := fmt.Sprintf("host1-%s", random.UUID())
	f.mu.Unlock()

	ours, theirs := net.Pipe()
	fw := &lockedFrames{w: ours}
	detached := make(chan struct{})
	f.wg.Add(1)
	go func() { // client → job
		defer f.wg.Done()
		defer close(detached)
		for {
			fr, err := host.ReadFrame(ours)
			if err != nil {
				cancel() // the client detached: stop the job, as the host does
				return
			}
			switch fr.Type {
			case host.FrameStdin:
				_, _ = stdin.Write(fr.Payload)
			case host.FrameStdinEOF:
				stdin.Close()
			}
		}
	}()
	f.wg.Add(1)
	go func() { // job → client
		defer f.wg.Done()
		var copies sync.WaitGroup
		copies.Add(2)
		go func() { defer copies.Done(); fw.copy(host.FrameStdout, stdout) }()
		go func() { defer copies.Done(); fw.copy(host.FrameStderr, stderr) }()
		copies.Wait()
		err := cmd.Wait()
		status := 0
		if exit, ok := err.(*exec.ExitError); ok {
			status = exit.ExitCode()
		}
		f.mu.Lock()
		f.active--
		if ctx.Err() != nil {
			f.cancelled++
		} else {
			f.finished++
		}
		f.mu.Unlock()
		_ = fw.write(host.FrameExit, host.ExitPayload(status))
		ours.Close()
		<-detached
		cancel()
	}()
	return &controller.Job{ID: id, HostID: "host1", State: controller.JobStateStarting}, theirs, nil
}

func (f *fakeRunner) stats() (started, active, maxActive, cancelled, finished int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.specs), f.active, f.maxActive, f.cancelled, f.finished
}

// appJobs are the specs of the jobs run of pushed apps' releases (not
// builds), in order.
func (f *fakeRunner) appJobs() []*server.JobSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	var jobs []*server.JobSpec
	for _, s := range f.specs {
		if s.Artifact.URI == slugrunnerImage || s.Artifact.Type == controller.ArtifactTypeDockerArchive {
			jobs = append(jobs, s)
		}
	}
	return jobs
}

// lastBuild is the spec of the last build job.
func (f *fakeRunner) lastBuild() *server.JobSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.specs) - 1; i >= 0; i-- {
		if f.specs[i].Artifact.URI == slugbuilderImage {
			return f.specs[i]
		}
	}
	return nil
}

func (f *fakeRunner) lastSpec() *server.JobSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.specs) == 0 {
		return nil
	}
	return f.specs[len(f.specs)-1]
}

type lockedFrames struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedFrames) write(t host.FrameType, p []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return host.WriteFrame(l.w, t, p)
}

func (l *lockedFrames) copy(t host.FrameType, r io.Reader) {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 && l.write(t, buf[:n]) != nil {
			_, _ = io.Copy(io.Discard, r)
			return
		}
		if err != nil {
			return
		}
	}
}
