package slugrunner

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	blobclient "github.com/openflynn/flynn/blobstore/client"
	blobfs "github.com/openflynn/flynn/blobstore/fs"
	blobserver "github.com/openflynn/flynn/blobstore/server"
	"github.com/openflynn/flynn/blobstore/signed"
	"github.com/openflynn/flynn/pkg/cabundle"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/syncbuf"
	"github.com/openflynn/flynn/pkg/tartest"
)

func serveSlug(t *testing.T, data []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slug.tgz" {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/slug.tgz"
}

func devNull(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestRunStartsProcessTypeWithProfileAndPort(t *testing.T) {
	url := serveSlug(t, tartest.Gzip(t, tartest.Map(t, map[string]string{
		"Procfile":               "web: echo \"web $GREETING home=$HOME port=$PORT pwd=$(pwd) arg=$SECRET\"\nworker: exit 3\n",
		".profile.d/":            "",
		".profile.d/00-env.sh":   "export GREETING=hello-from-profile\n",
		".profile.d/10-chain.sh": "export GREETING=\"$GREETING+chained\"\n",
		".profile.d/ignored.txt": "export GREETING=wrong\n",
	}, 0o755)))
	dir := filepath.Join(t.TempDir(), "app")
	var out syncbuf.Buffer
	code, err := Run(t.Context(), Config{
		SlugURL: url, AppDir: dir, Port: "5123", Args: []string{"start", "web"},
		Env: []string{"PATH=" + os.Getenv("PATH"), "SECRET=s3", "HOME=/root"}, Stdin: devNull(t), Stdout: &out, Stderr: &out,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("exit code %d, output %q", code, out.String())
	}
	want := "web hello-from-profile+chained home=" + dir + " port=5123 pwd=" + dir + " arg=s3\n"
	if got := out.String(); got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func TestRunExitCodesAndDefaults(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Procfile"), []byte("worker: exit 3\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".release"), []byte("---\ndefault_process_types:\n  web: echo \"port=$PORT\"\n"), 0o644)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"Procfile type", []string{"start", "worker"}, 3, ""},
		{"buildpack default with default port", []string{"start", "web"}, 0, "port=8080\n"},
		{"command line", []string{"echo $((6*7))"}, 0, "42\n"},
		{"argv keeps its words", []string{"echo", "$((6*7))"}, 0, "$((6*7))\n"},
		{"killed by a signal", []string{"kill -TERM $$"}, 128 + int(syscall.SIGTERM), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out syncbuf.Buffer
			code, err := Run(t.Context(), Config{AppDir: dir, Args: tt.args, Env: []string{"PATH=" + os.Getenv("PATH")}, Stdin: devNull(t), Stdout: &out, Stderr: &out}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode || out.String() != tt.wantOut {
				t.Errorf("code %d output %q, want %d %q", code, out.String(), tt.wantCode, tt.wantOut)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Procfile"), []byte("web: true\n"), 0o644)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown type", Config{AppDir: dir, Args: []string{"start", "clock"}}, `process type "clock"`},
		{"no args", Config{AppDir: dir}, "nothing to run"},
		{"slug missing", Config{AppDir: t.TempDir(), SlugURL: serveSlug(t, nil) + "x", Args: []string{"true"}}, "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(t.Context(), tt.cfg, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRunForwardsSignals(t *testing.T) {
	dir := t.TempDir()
	// The process reports it is ready, then waits for SIGUSR1 and exits 7.
	os.WriteFile(filepath.Join(dir, "Procfile"), []byte("web: trap 'echo got-usr1; exit 7' USR1; echo ready; while true; do sleep 0.05; done\n"), 0o644)
	signals := make(chan os.Signal, 1)
	var out syncbuf.Buffer
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := Run(t.Context(), Config{AppDir: dir, Args: []string{"start", "web"}, Env: []string{"PATH=" + os.Getenv("PATH")}, Stdin: devNull(t), Stdout: &out, Stderr: &out, Signals: signals}, slog.New(slog.DiscardHandler))
		done <- result{code, err}
	}()
	poll.UntilNil(t, 10*time.Second, "process ready", func() error {
		if s := out.String(); !strings.Contains(s, "ready") {
			return fmt.Errorf("output %q", s)
		}
		return nil
	})
	signals <- syscall.SIGUSR1
	select {
	case r := <-done:
		if r.err != nil || r.code != 7 || !strings.Contains(out.String(), "got-usr1") {
			t.Errorf("code %d err %v output %q, want 7 and got-usr1", r.code, r.err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("process did not exit after SIGUSR1")
	}
}

func TestCommandQuotesArgv(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"echo", "hi"}, "echo hi"},
		{[]string{"rake db:migrate && echo done"}, "rake db:migrate && echo done"},
		{[]string{"bash", "-c", "echo one-off in $HOME; exit 3"}, `bash -c 'echo one-off in $HOME; exit 3'`},
		{[]string{"echo", "it's"}, `echo 'it'\''s'`},
		{[]string{"printf", ""}, "printf ''"},
		{[]string{"ls", "-la", "/app/bin", "KEY=v@1:2,3+4%"}, "ls -la /app/bin KEY=v@1:2,3+4%"},
	}
	for _, tt := range tests {
		got, err := Command(t.TempDir(), tt.args)
		if err != nil || got != tt.want {
			t.Errorf("Command(%q) = %q, %v; want %q", tt.args, got, err, tt.want)
		}
		if len(tt.args) < 2 {
			continue
		}
		// bash reads the line back into the same words.
		words, err := exec.Command("bash", "-c", "f() { for a in \"$@\"; do printf '[%s]' \"$a\"; done; }; eval \"f $0\"", got).Output()
		if err != nil {
			t.Fatalf("bash on %q: %v", got, err)
		}
		var want strings.Builder
		for _, a := range tt.args {
			want.WriteString("[" + a + "]")
		}
		if string(words) != want.String() {
			t.Errorf("bash reads %q as %s, want %s", got, words, want.String())
		}
	}
}

// TestRunFetchesSignedSlug fetches the slug from the real blobstore with
// a signed URL, as app jobs do, and is refused without one.
func TestRunFetchesSignedSlug(t *testing.T) {
	const key = "cluster-key"
	backend, err := blobfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(blobserver.NewHandler(backend, blobserver.Options{AuthKey: key}, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	const path = "apps/a/slug-1.tgz"
	if _, err := blobclient.New(srv.URL, key).Put(t.Context(), path, bytes.NewReader(tartest.Gzip(t, tartest.Map(t, map[string]string{"Procfile": "web: echo signed\n"}, 0o755)))); err != nil {
		t.Fatal(err)
	}
	signedURL, err := signed.URL(srv.URL, key, http.MethodGet, path, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	run := func(slugURL string) (string, error) {
		var out syncbuf.Buffer
		_, err := Run(t.Context(), Config{
			SlugURL: slugURL, AppDir: filepath.Join(t.TempDir(), "app"), Args: []string{"start", "web"},
			Env: []string{"PATH=" + os.Getenv("PATH")}, Stdin: devNull(t), Stdout: &out, Stderr: &out,
		}, slog.New(slog.DiscardHandler))
		return out.String(), err
	}
	for i := range 2 { // every job start fetches the slug again
		if out, err := run(signedURL); err != nil || out != "signed\n" {
			t.Fatalf("run %d with the signed URL: output %q, err %v", i+1, out, err)
		}
	}
	_, err = run(srv.URL + "/" + path)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("run with the plain URL: err = %v, want a 401", err)
	}
	_, err = run(strings.Replace(signedURL, "slug-1", "slug-2", 1))
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "sig=") {
		t.Fatalf("run with another slug's signature: err = %v, want a 401 that does not show the signature", err)
	}
}

// `start release` runs the Procfile's release command, Heroku's release
// phase, which gitreceive runs as a one-off job before a deploy.
func TestRunStartsReleaseType(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Procfile"), []byte("web: exit 1\nrelease: echo \"migrating in $(pwd)\" && exit 4\n"), 0o644)
	var out syncbuf.Buffer
	code, err := Run(t.Context(), Config{AppDir: dir, Args: []string{"start", "release"}, Env: []string{"PATH=" + os.Getenv("PATH")}, Stdin: devNull(t), Stdout: &out, Stderr: &out}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if want := "migrating in " + dir + "\n"; code != 4 || out.String() != want {
		t.Errorf("code %d output %q, want 4 %q (the release command's status is the job's)", code, out.String(), want)
	}
}

// TestRunTrustsExtraCAs checks that the app's process finds the cluster's
// extra CA certificates through the usual variables, keeps those it set
// itself, and still runs when the certificates are broken.
func TestRunTrustsExtraCAs(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	srv.Close()
	const show = `for v in SSL_CERT_FILE NODE_EXTRA_CA_CERTS PIP_CERT REQUESTS_CA_BUNDLE CURL_CA_BUNDLE GIT_SSL_CAINFO; do echo "$v=${!v:-}"; done`
	tests := []struct {
		name    string
		certs   string
		wantSet bool
		wantLog string
	}{
		{"none", "", false, ""},
		{"certificates", ca, true, ""},
		{"broken", "garbage", false, "the cluster's extra CA certificates are not trusted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bundle := filepath.Join(t.TempDir(), "ca.crt")
			env := []string{"PATH=" + os.Getenv("PATH"), "PIP_CERT=/app/mine.pem"}
			if tt.certs != "" {
				env = append(env, cabundle.EnvVar+"="+tt.certs)
			}
			var out, log syncbuf.Buffer
			code, err := Run(t.Context(), Config{
				AppDir: t.TempDir(), Args: []string{show}, Env: env, CABundlePath: bundle,
				Stdin: devNull(t), Stdout: &out, Stderr: &out,
			}, slog.New(slog.NewTextHandler(&log, nil)))
			if err != nil || code != 0 {
				t.Fatalf("Run = %d, %v; output %q", code, err, out.String())
			}
			var want strings.Builder
			for _, v := range cabundle.Vars() {
				value := ""
				if tt.wantSet {
					value = bundle
				}
				if v == "PIP_CERT" {
					value = "/app/mine.pem"
				}
				fmt.Fprintf(&want, "%s=%s\n", v, value)
			}
			if out.String() != want.String() {
				t.Errorf("the app saw\n%s\nwant\n%s", out.String(), want.String())
			}
			if _, err := os.Stat(bundle); (err == nil) != tt.wantSet {
				t.Errorf("bundle written: %v, want %v", err == nil, tt.wantSet)
			}
			if !strings.Contains(log.String(), tt.wantLog) || (tt.wantLog == "" && log.String() != "") {
				t.Errorf("log = %q, want %q", log.String(), tt.wantLog)
			}
		})
	}
}
