package slugbuilder_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/images/imagestest"
	"github.com/openflynn/flynn/pkg/cabundle"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/random"
	"github.com/openflynn/flynn/pkg/testdeps"
	"github.com/openflynn/flynn/slugbuilder"
)

// blobstore is an in-memory stand-in for the blobstore's PUT/GET.
type blobstore struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

func (b *blobstore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		data, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b.blobs[r.URL.Path] = data
		w.WriteHeader(http.StatusCreated)
	case http.MethodGet:
		data, ok := b.blobs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (b *blobstore) has(path string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.blobs[path]
	return ok
}

// TestSampleAppsBuildAndRunIntegration pushes each app of test/apps through
// slugbuilder in the real build image, then runs its slug with slugrunner in
// the stack image on a loopback port and asks it over HTTP.
func TestSampleAppsBuildAndRunIntegration(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		app      string
		wantType string // the web command slugbuilder reports
		wantBody string // what the app answers; %d is its port
	}{
		{"nodejs", "npm start", "Hello from Flynn on port %d\n"},
		{"go", "hello", "Hello from Flynn (Go) on port %d\n"},
		{"python", "python3 app.py", "Hello from Flynn (Python) on port %d\n"},
		{"static", `exec python3 -m http.server "$PORT"`, "<h1>Hello from Flynn (static)</h1>"},
		{"procfile", `cd public && exec python3 -m http.server "$PORT"`, "Hello from Flynn (Procfile)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.app, func(t *testing.T) {
			slugPath := "/slugs/" + tt.app + ".tgz"
			out, err := h.build(t, filepath.Join(h.env.Repo, "test", "apps", tt.app), slugPath, "GREETING=from-config")
			if err != nil {
				t.Fatalf("slugbuilder: %v\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			types, ok := slugbuilder.ParseProcessTypesLine(lines[len(lines)-1])
			if !ok || types["web"] != tt.wantType {
				t.Fatalf("last line %q: want the process types with web: %s\n%s", lines[len(lines)-1], tt.wantType, out)
			}
			if !bytes.Contains(out, []byte("-----> Compressing and uploading the slug")) {
				t.Errorf("build output lacks the upload step:\n%s", out)
			}
			if !h.store.has("/caches/" + tt.app + ".tgz") {
				t.Error("the build cache was not saved")
			}
			port, body := h.run(t, slugPath)
			if !strings.Contains(body, strings.ReplaceAll(tt.wantBody, "%d", fmt.Sprint(port))) {
				t.Errorf("GET / = %q, want it to contain %q", body, fmt.Sprintf(tt.wantBody, port))
			}
		})
	}
}

// TestNodeEnginesIntegration checks the Node.js buildpack's answer to an
// engines range the build image cannot match exactly.
func TestNodeEnginesIntegration(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name    string
		engines string
		wantErr bool
		want    string
	}{
		{"older runs with a warning", "16.x", false, "WARNING: Node.js \"16.x\" is requested (package.json engines.node) but this stack has Node.js "},
		{"newer fails clearly", ">=99", true, " !     Node.js \">=99\" is requested (package.json engines.node) but this stack has Node.js "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			pkg := fmt.Sprintf(`{"name":"e","version":"1.0.0","scripts":{"start":"node -e 0"},"engines":{"node":%q}}`, tt.engines)
			if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(pkg), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := h.build(t, dir, "/slugs/engines.tgz")
			if (err != nil) != tt.wantErr || !bytes.Contains(out, []byte(tt.want)) {
				t.Errorf("err = %v (want error: %v), output should contain %q:\n%s", err, tt.wantErr, tt.want, out)
			}
		})
	}
}

// appJobArgs run a container as flynn-host runs build and app jobs: as the
// unprivileged app user with every capability dropped, so the tests prove
// that slugbuilder, the buildpacks and slugrunner need no root.
var appJobArgs = []string{"--user", "1000:1000", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "-e", "HOME=/app"}

// harness runs build and app containers against an in-memory blobstore.
type harness struct {
	env    *imagestest.Env
	docker string
	store  *blobstore
	url    string
	label  string
}

func newHarness(t *testing.T) *harness {
	env := imagestest.Build(t, "slugbuilder", "slugrunner")
	h := &harness{env: env, docker: testdeps.LookPath(t, "docker"), store: &blobstore{blobs: map[string][]byte{}}}
	srv := httptest.NewServer(h.store)
	t.Cleanup(srv.Close)
	h.url = srv.URL
	h.label = "org.openflynn.test=slugbuilder-" + random.Hex(4)
	t.Cleanup(func() {
		out, _ := exec.Command(h.docker, "ps", "-aq", "--filter", "label="+h.label).Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			exec.Command(h.docker, append([]string{"rm", "-f"}, ids...)...).Run()
		}
	})
	return h
}

// build runs slugbuilder with the app's tar on stdin, as gitreceive does,
// with a memory limit as build jobs have.
func (h *harness) build(t *testing.T, app, slugPath string, vars ...string) ([]byte, error) {
	t.Helper()
	var source bytes.Buffer
	tarCmd := exec.Command("tar", "-C", app, "-c", ".")
	tarCmd.Stdout = &source
	if err := tarCmd.Run(); err != nil {
		t.Fatalf("tar the app: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	args := []string{"run", "-i", "--rm", "--network", "host", "--label", h.label, "--memory", "1g", "--pids-limit", "1024"}
	args = append(args, appJobArgs...)
	args = append(args,
		"-e", "SLUG_PUT_URL="+h.url+slugPath,
		"-e", "CACHE_URL="+h.url+"/caches/"+filepath.Base(app)+".tgz",
		"-e", "CACHE_PUT_URL="+h.url+"/caches/"+filepath.Base(app)+".tgz",
		"-e", "SOURCE_VERSION=0123abcd")
	for _, v := range vars {
		args = append(args, "-e", v)
	}
	cmd := exec.CommandContext(ctx, h.docker, append(args, h.env.Manifest["slugbuilder"].Ref)...)
	cmd.Stdin = &source
	return cmd.CombinedOutput()
}

// run starts slugrunner on the slug with a free port, returns the app's
// answer to GET /, and stops it, checking that slugrunner forwards docker
// stop's SIGTERM (the app must stop long before docker would kill it).
func (h *harness) run(t *testing.T, slugPath string) (int, string) {
	t.Helper()
	port := freePort(t)
	name := "slugrunner-test-" + random.Hex(4)
	args := append([]string{"run", "-d", "--name", name, "--network", "host", "--label", h.label}, appJobArgs...)
	run := exec.Command(h.docker, append(args,
		"-e", "SLUG_URL="+h.url+slugPath, "-e", fmt.Sprintf("PORT=%d", port),
		h.env.Manifest["slugrunner"].Ref, "start", "web")...)
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("start slugrunner: %v\n%s", err, out)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	var body string
	err := poll.Wait(t.Context(), 60*time.Second, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(data)
		return nil
	})
	if err != nil {
		logs, _ := exec.Command(h.docker, "logs", name).CombinedOutput()
		t.Fatalf("the app never answered on %s: %v\n%s", url, err, logs)
	}
	start := time.Now()
	if out, err := exec.Command(h.docker, "stop", "-t", "30", name).CombinedOutput(); err != nil {
		t.Fatalf("docker stop: %v\n%s", err, out)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("stopping took %s: SIGTERM did not reach the app", took)
	}
	return port, body
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestBuildEnvIntegration checks, in the real images and as the
// unprivileged app user, what the cluster's build env can carry: a STACK
// that buildpacks see instead of flynn-bookworm, and extra CA certificates
// that the build and the app's processes find through SSL_CERT_FILE and
// the like; and that a Python version the build image lacks fails the
// build in one line.
func TestBuildEnvIntegration(t *testing.T) {
	h := newHarness(t)
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	srv.Close()

	app := t.TempDir()
	files := map[string]string{
		"Procfile":    "web: exec python3 -m http.server \"$PORT\"\nrelease: echo release ran\n",
		".buildpacks": "/buildpacks/procfile\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(app, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := h.build(t, app, "/slugs/buildenv.tgz", "STACK=heroku-22", cabundle.EnvVar+"="+ca)
	if err != nil {
		t.Fatalf("slugbuilder: %v\n%s", err, out)
	}
	for _, want := range []string{
		"-----> Buildpacks see STACK=heroku-22 (set in the build's environment)\n",
		"-----> Trusting the cluster's extra CA certificates (" + cabundle.DefaultPath + ")\n",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if types, ok := slugbuilder.ParseProcessTypesLine(lines[len(lines)-1]); !ok || types["release"] != "echo release ran" {
		t.Errorf("process types line %q lacks release", lines[len(lines)-1])
	}

	// The app's process: the bundle holds the system's certificates and
	// the extra one, and the usual variables name it.
	got := h.runCommand(t, "/slugs/buildenv.tgz", []string{cabundle.EnvVar + "=" + ca},
		`echo "$SSL_CERT_FILE $CURL_CA_BUNDLE $PIP_CERT"; grep -c 'BEGIN CERTIFICATE' "$SSL_CERT_FILE"; grep -q "$(sed -n 2p <<<"$`+cabundle.EnvVar+`")" "$SSL_CERT_FILE" && echo has-extra`)
	fields := strings.Fields(got)
	if len(fields) != 5 || fields[0] != cabundle.DefaultPath || fields[1] != cabundle.DefaultPath || fields[2] != cabundle.DefaultPath || fields[4] != "has-extra" {
		t.Fatalf("the app saw %q; want the bundle in the variables, a count of certificates and has-extra", got)
	}
	if n, err := strconv.Atoi(fields[3]); err != nil || n < 2 {
		t.Errorf("the bundle holds %s certificates, want the system's and the extra one", fields[3])
	}
	if got := h.runCommand(t, "/slugs/buildenv.tgz", nil, "start", "release"); got != "release ran\n" {
		t.Errorf("start release printed %q", got)
	}

	pyApp := t.TempDir()
	for name, content := range map[string]string{"app.py": "print('hi')\n", ".python-version": "3.99\n"} {
		if err := os.WriteFile(filepath.Join(pyApp, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err = h.build(t, pyApp, "/slugs/python-version.tgz")
	want := " !     Python 3.99 is requested (.python-version) but this stack has Python 3."
	if err == nil || !bytes.Contains(out, []byte(want)) {
		t.Errorf("err = %v, want a failed build saying %q:\n%s", err, want, out)
	}
}

// runCommand runs args with slugrunner on the slug, as a one-off job, and
// returns its output.
func (h *harness) runCommand(t *testing.T, slugPath string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dockerArgs := append([]string{"run", "--rm", "--network", "host", "--label", h.label}, appJobArgs...)
	dockerArgs = append(dockerArgs, "-e", "SLUG_URL="+h.url+slugPath)
	for _, v := range env {
		dockerArgs = append(dockerArgs, "-e", v)
	}
	dockerArgs = append(dockerArgs, h.env.Manifest["slugrunner"].Ref)
	out, err := exec.CommandContext(ctx, h.docker, append(dockerArgs, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("slugrunner %q: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestDockerfileSampleIntegration runs the real slugbuilder image on
// test/apps/dockerfile: no bundled buildpack matches it, so the job ends
// with DockerfileLine and exits 0, having uploaded no slug and saved no
// cache. Its Dockerfile then builds as a host builds one (Docker's
// classic builder, no pulls, on the stack image) and the image, run as an
// app job runs, answers with what its RUN step wrote.
func TestDockerfileSampleIntegration(t *testing.T) {
	h := newHarness(t)
	app := filepath.Join(h.env.Repo, "test", "apps", "dockerfile")
	out, err := h.build(t, app, "/slugs/dockerfile.tgz")
	if err != nil {
		t.Fatalf("slugbuilder: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if !slugbuilder.ParseDockerfileLine(lines[len(lines)-1]) || !bytes.Contains(out, []byte("-----> No buildpack matches; building the Dockerfile\n")) {
		t.Fatalf("slugbuilder did not leave the app to its Dockerfile:\n%s", out)
	}
	if h.store.has("/slugs/dockerfile.tgz") || h.store.has("/caches/dockerfile.tgz") {
		t.Fatalf("a Dockerfile build uploaded a slug or a cache:\n%s", out)
	}

	tag := "flynn-test/dockerfile-sample:" + random.Hex(4)
	build := exec.CommandContext(t.Context(), h.docker, "build", "--pull=false", "--label", h.label,
		"--build-arg", "STACK="+h.env.Manifest["stack"].Ref, "-t", tag, app)
	build.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(h.docker, "rmi", "-f", tag).Run() })
	port := freePort(t)
	args := append([]string{"run", "-d", "--label", h.label, "-p", fmt.Sprintf("127.0.0.1:%d:8080", port)}, appJobArgs...)
	run := exec.Command(h.docker, append(args, tag)...)
	cid, err := run.Output()
	if err != nil {
		t.Fatalf("docker run: %v", err)
	}
	var body string
	err = poll.Wait(t.Context(), 60*time.Second, func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		body = string(data)
		return err
	})
	if err != nil {
		logs, _ := exec.Command(h.docker, "logs", strings.TrimSpace(string(cid))).CombinedOutput()
		t.Fatalf("the image never answered: %v\n%s", err, logs)
	}
	if want := "Hello from Flynn (Dockerfile) built with RUN 42\n"; body != want {
		t.Errorf("GET / = %q, want %q", body, want)
	}
}
