package slugbuilder

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	blobclient "github.com/openflynn/flynn/blobstore/client"
	blobfs "github.com/openflynn/flynn/blobstore/fs"
	blobserver "github.com/openflynn/flynn/blobstore/server"
	"github.com/openflynn/flynn/blobstore/signed"
	"github.com/openflynn/flynn/pkg/cabundle"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/tartest"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// testConfig points a build at temp dirs and the fake bundled buildpacks.
func testConfig(t *testing.T, out io.Writer) Config {
	t.Helper()
	tmp := t.TempDir()
	bps, err := filepath.Abs("testdata/buildpacks")
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		BuildDir:      filepath.Join(tmp, "app"),
		CacheDir:      filepath.Join(tmp, "cache"),
		EnvDir:        filepath.Join(tmp, "env"),
		FetchDir:      filepath.Join(tmp, "fetched"),
		BuildpacksDir: bps,
		Env:           []string{"PATH=" + os.Getenv("PATH")},
		SourceVersion: "abc123",
		Stdout:        out,
	}
}

// writeApp fills dir with files (name → content).
func writeApp(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestBuildDetectCompileRelease(t *testing.T) {
	var out bytes.Buffer
	cfg := testConfig(t, &out)
	cfg.AppEnv = map[string]string{"GREETING": "hi there"}
	writeApp(t, cfg.BuildDir, map[string]string{
		"package.json": "{}",
		"Procfile":     "web: node app.js\nworker: node worker.js\n",
	})
	res, err := Build(t.Context(), cfg, discard())
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out.String())
	}
	if got := res.Buildpacks; len(got) != 1 || got[0] != "Fake Node" {
		t.Errorf("buildpacks = %q, want the first in order that matches (Fake Node)", got)
	}
	want := map[string]string{"web": "node app.js", "worker": "node worker.js", "console": "node -i"}
	if !maps.Equal(res.ProcessTypes, want) {
		t.Errorf("process types = %v, want %v (Procfile wins over defaults)", res.ProcessTypes, want)
	}
	if got, want := readFile(t, filepath.Join(cfg.BuildDir, "built.txt")), "version=abc123 greeting=hi there builds=1\n"; got != want {
		t.Errorf("built.txt = %q, want %q (SOURCE_VERSION and ENV_DIR reach compile)", got, want)
	}
	release, err := os.Open(filepath.Join(cfg.BuildDir, ".release"))
	if err != nil {
		t.Fatal(err)
	}
	defer release.Close()
	defaults, err := ParseRelease(release)
	if err != nil || defaults["web"] != "node server.js" || defaults["console"] != "node -i" {
		t.Errorf(".release defaults = %v, %v", defaults, err)
	}
	for _, line := range []string{
		"-----> Fake Node app detected\n",
		"       compiling in " + cfg.BuildDir + " for " + Stack + "\n",
		"-----> Discovered process types\n",
		"       Procfile declares types -> web, worker\n",
		"       Default types for buildpack -> console, web\n",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

func TestBuildSelection(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		url       string
		wantPacks []string
		wantErr   string
	}{
		{"procfile only", map[string]string{"Procfile": "web: ./run\n"}, "", []string{"Procfile"}, ""},
		{"nothing matches", map[string]string{"README": "hi"}, "", nil, "no buildpack can build this app"},
		{"chained by .buildpacks", map[string]string{".buildpacks": "fake-procfile\n# comment\nfake-node\n", "README": "x"}, "", []string{"fake-procfile", "fake-node"}, ""}, // detect said no, so directory names
		{"BUILDPACK_URL names a local buildpack", map[string]string{"package.json": "{}"}, "fake-procfile", []string{"fake-procfile"}, ""},
		{"bad Procfile", map[string]string{"Procfile": "web node\n"}, "", nil, "Procfile, line 1"},
		{"unknown bundled name", map[string]string{"x": ""}, "nope", nil, "no bin/compile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cfg := testConfig(t, &out)
			cfg.BuildpackURL = tt.url
			writeApp(t, cfg.BuildDir, tt.files)
			res, err := Build(t.Context(), cfg, discard())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Build: %v\n%s", err, out.String())
			}
			if strings.Join(res.Buildpacks, ",") != strings.Join(tt.wantPacks, ",") {
				t.Errorf("buildpacks = %q, want %q", res.Buildpacks, tt.wantPacks)
			}
		})
	}
}

// tarGz archives dir for serving as a buildpack tarball, under a top
// directory as GitHub's archives have.
func tarGz(t *testing.T, dir, top string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if top != "" {
			rel = top + "/" + rel
		}
		// Mode 0644: fetching must restore the execute bits of bin/*.
		if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: info.Size(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write([]byte(readFile(t, p)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestBuildpackURLTarball(t *testing.T) {
	archive := tarGz(t, "testdata/buildpacks/fake-node", "fake-node-main")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(archive) }))
	defer srv.Close()
	var out bytes.Buffer
	cfg := testConfig(t, &out)
	cfg.BuildpacksDir = t.TempDir() // nothing bundled: only the URL can build
	cfg.BuildpackURL = srv.URL + "/buildpack.tgz"
	writeApp(t, cfg.BuildDir, map[string]string{"package.json": "{}"})
	res, err := Build(t.Context(), cfg, discard())
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out.String())
	}
	if res.Buildpacks[0] != "Fake Node" || res.ProcessTypes["web"] != "node server.js" {
		t.Errorf("result = %+v", res)
	}
	if !strings.Contains(out.String(), "-----> Fetching custom buildpack "+cfg.BuildpackURL) {
		t.Errorf("output does not say the buildpack was fetched:\n%s", out.String())
	}
}

// An archive's single top folder is stripped only when it holds bin/:
// GitHub's archives have such a folder, but an archive of just bin/ is
// the buildpack itself.
func TestBuildpackURLTarballLayouts(t *testing.T) {
	tests := []struct {
		name, prefix string
	}{
		{"top folder holding bin", "fake-node-main"},
		{"bin alone at the top", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			archive := tarGz(t, "testdata/buildpacks/fake-node", tt.prefix)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(archive) }))
			defer srv.Close()
			var out bytes.Buffer
			cfg := testConfig(t, &out)
			cfg.BuildpacksDir = t.TempDir()
			cfg.BuildpackURL = srv.URL + "/buildpack.tgz"
			writeApp(t, cfg.BuildDir, map[string]string{"package.json": "{}"})
			if _, err := Build(t.Context(), cfg, discard()); err != nil {
				t.Fatalf("Build: %v\n%s", err, out.String())
			}
		})
	}
}

func TestBuildpackURLGit(t *testing.T) {
	testdeps.LookPath(t, "git")
	repo := filepath.Join(t.TempDir(), "bp")
	if err := os.CopyFS(repo, os.DirFS("testdata/buildpacks/fake-procfile")); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"detect", "compile"} {
		os.Chmod(filepath.Join(repo, "bin", s), 0o755)
	}
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.email=t@example.com", "-c", "user.name=t"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main")
	git("add", ".")
	git("commit", "-q", "-m", "buildpack")
	git("tag", "v1")
	var out bytes.Buffer
	cfg := testConfig(t, &out)
	cfg.BuildpacksDir = t.TempDir()
	cfg.BuildpackURL = "file://" + repo + "#v1"
	writeApp(t, cfg.BuildDir, map[string]string{"Procfile": "web: x"})
	res, err := Build(t.Context(), cfg, discard())
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out.String())
	}
	if res.Buildpacks[0] != "Procfile" {
		t.Errorf("buildpacks = %q", res.Buildpacks)
	}
	if _, err := os.Stat(filepath.Join(cfg.BuildDir, "procfile-compiled")); err != nil {
		t.Errorf("the cloned buildpack did not compile: %v", err)
	}
}

func TestSlugignore(t *testing.T) {
	var out bytes.Buffer
	cfg := testConfig(t, &out)
	writeApp(t, cfg.BuildDir, map[string]string{
		"Procfile":          "web: x",
		".slugignore":       "*.psd\n/docs\ntest/fixtures/\n# comment\n",
		"art/logo.psd":      "big",
		"logo.psd":          "big",
		"docs/manual.txt":   "m",
		"lib/docs/keep.txt": "k",
		"test/fixtures/a":   "a",
		"test/unit.txt":     "u",
		"app.sh":            "ok",
	})
	if _, err := Build(t.Context(), cfg, discard()); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"art/logo.psd": false, "logo.psd": false, "docs": false, "test/fixtures": false,
		"lib/docs/keep.txt": true, "test/unit.txt": true, "app.sh": true,
	} {
		_, err := os.Stat(filepath.Join(cfg.BuildDir, name))
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v, want %v", name, got, want)
		}
	}
}

// fakeBlobstore keeps PUT bodies in memory and serves them back.
type fakeBlobstore struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

func (b *fakeBlobstore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		data, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
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
	}
}

func (b *fakeBlobstore) get(path string) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.blobs[path]
}

func slugFiles(t *testing.T, slug []byte) map[string]string {
	t.Helper()
	dir := t.TempDir()
	if err := ExtractTarGz(bytes.NewReader(slug), dir, Limits{}); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files[filepath.ToSlash(rel)] = readFile(t, p)
		}
		return err
	})
	return files
}

func TestRunUploadsSlugAndKeepsCache(t *testing.T) {
	blobs := &fakeBlobstore{blobs: map[string][]byte{}}
	srv := httptest.NewServer(blobs)
	defer srv.Close()
	source := map[string]string{"package.json": "{}", ".git/HEAD": "ref: refs/heads/main\n", "server.js": "x"}
	for build := 1; build <= 2; build++ {
		var out bytes.Buffer
		cfg := testConfig(t, &out)
		cfg.SlugPutURL = srv.URL + "/slugs/" + strconv.Itoa(build) + ".tgz"
		cfg.CacheURL = srv.URL + "/caches/app.tgz"
		cfg.CachePutURL = srv.URL + "/caches/app.tgz"
		res, err := Run(t.Context(), cfg, bytes.NewReader(tartest.Map(t, source, 0o644)), discard())
		if err != nil {
			t.Fatalf("build %d: %v\n%s", build, err, out.String())
		}
		files := slugFiles(t, blobs.get("/slugs/"+strconv.Itoa(build)+".tgz"))
		if _, ok := files[".git/HEAD"]; ok {
			t.Errorf("build %d: the slug has .git", build)
		}
		if files["server.js"] != "x" || files[".profile.d/fake-node.sh"] == "" || files[".release"] == "" {
			t.Errorf("build %d: slug files = %v", build, fileNames(files))
		}
		// The cache's counter proves the cache went to the blobstore and back.
		if got, want := files["built.txt"], "version=abc123 greeting=none builds="+strconv.Itoa(build)+"\n"; got != want {
			t.Errorf("build %d: built.txt = %q, want %q", build, got, want)
		}
		if res.SlugSize != int64(len(blobs.get("/slugs/"+strconv.Itoa(build)+".tgz"))) {
			t.Errorf("build %d: SlugSize %d, uploaded %d", build, res.SlugSize, len(blobs.get("/slugs/1.tgz")))
		}
		if restored := strings.Contains(out.String(), "-----> Restoring build cache"); restored != (build == 2) {
			t.Errorf("build %d: output says the cache was restored: %v; want %v\n%s", build, restored, build == 2, out.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		types, ok := ParseProcessTypesLine(lines[len(lines)-1])
		if !ok || types["web"] != "node server.js" {
			t.Errorf("build %d: last line %q is not the process types", build, lines[len(lines)-1])
		}
	}
}

func fileNames(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func TestRunFailsWhenUploadFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "disk full", http.StatusInsufficientStorage)
	}))
	defer srv.Close()
	var out bytes.Buffer
	cfg := testConfig(t, &out)
	cfg.SlugPutURL = srv.URL + "/slug.tgz"
	_, err := Run(t.Context(), cfg, bytes.NewReader(tartest.Map(t, map[string]string{"Procfile": "web: x"}, 0o644)), discard())
	if err == nil || !strings.Contains(err.Error(), "507") {
		t.Fatalf("err = %v, want the upload's 507", err)
	}
	if strings.Contains(out.String(), ProcessTypesPrefix) {
		t.Errorf("a failed build printed the process types line:\n%s", out.String())
	}
}

func TestCancelKillsTheBuildpackProcessGroup(t *testing.T) {
	out := &lockedBuffer{}
	cfg := testConfig(t, out)
	writeApp(t, cfg.BuildDir, map[string]string{"slow": ""})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := Build(ctx, cfg, discard())
		errc <- err
	}()
	poll.UntilNil(t, 10*time.Second, "the slow buildpack started", func() error {
		if s := out.String(); !strings.Contains(s, "started") {
			return fmt.Errorf("output:\n%s", s)
		}
		return nil
	})
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, filepath.Join(cfg.BuildDir, "grandchild.pid"))))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want a cancelled build", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Build did not return after cancel")
	}
	// The grandchild was reparented; poll until it is gone.
	poll.Until(t, 5*time.Second, fmt.Sprintf("the buildpack's child %d gone after the cancelled build", pid), func() bool {
		return syscall.Kill(pid, 0) != nil
	})
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestParseProcessTypesLine(t *testing.T) {
	var buf bytes.Buffer
	if err := writeProcessTypesLine(&buf, map[string]string{"web": "npm start"}); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	sc.Scan()
	types, ok := ParseProcessTypesLine(sc.Text())
	if !ok || types["web"] != "npm start" {
		t.Errorf("round trip = %v %v", types, ok)
	}
	for _, line := range []string{"-----> Discovered process types", "FLYNN_PROCESS_TYPES not json", ""} {
		if _, ok := ParseProcessTypesLine(line); ok {
			t.Errorf("ParseProcessTypesLine(%q) ok", line)
		}
	}
}

// TestRunRefusesTarBombs checks that a build refuses a pushed tree over the
// bounds at once, says why, and leaves nothing of it to build or upload.
func TestRunRefusesTarBombs(t *testing.T) {
	tests := []struct {
		name   string
		source []byte
		cfg    func(*Config)
		want   string
	}{
		{"sparse file", sparseBombTar(t), nil, "refusing the pushed tree: it unpacks to more than 2 GiB (the limit for a build)"},
		{"declared huge file", declaredHugeTar(t), nil, "it unpacks to more than 2 GiB"},
		{"too many files", manyEntriesTar(t, 50), func(c *Config) { c.MaxSourceEntries = 20 }, "refusing the pushed tree: it holds more than 20 files and directories"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blobs := &fakeBlobstore{blobs: map[string][]byte{}}
			srv := httptest.NewServer(blobs)
			defer srv.Close()
			var out bytes.Buffer
			cfg := testConfig(t, &out)
			cfg.SlugPutURL = srv.URL + "/slug.tgz"
			cfg.CachePutURL = srv.URL + "/cache.tgz"
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			_, err := Run(t.Context(), cfg, bytes.NewReader(tt.source), discard())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if entries, err := os.ReadDir(cfg.BuildDir); err != nil || len(entries) != 0 {
				t.Errorf("build dir holds %d entries (%v), want none", len(entries), err)
			}
			if len(blobs.blobs) != 0 {
				t.Errorf("uploaded %d blobs", len(blobs.blobs))
			}
		})
	}
}

// signedBlobstore is the real blobstore (filesystem backend) that takes
// only the key or signed URLs, and a signer of its URLs.
func signedBlobstore(t *testing.T) (*blobclient.Client, func(method, path string) string) {
	t.Helper()
	const key = "cluster-key"
	backend, err := blobfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(blobserver.NewHandler(backend, blobserver.Options{AuthKey: key}, discard()))
	t.Cleanup(srv.Close)
	sign := func(method, path string) string {
		u, err := signed.URL(srv.URL, key, method, path, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	return blobclient.New(srv.URL, key), sign
}

// TestRunWithSignedURLs builds twice against the real blobstore with the
// signed URLs gitreceive hands out: the slug and the cache go up, the
// cache comes back, and a used upload URL fails the build.
func TestRunWithSignedURLs(t *testing.T) {
	store, sign := signedBlobstore(t)
	source := map[string]string{"package.json": "{}", "server.js": "x"}
	for build := 1; build <= 2; build++ {
		var out bytes.Buffer
		cfg := testConfig(t, &out)
		cfg.SlugPutURL = sign("PUT", fmt.Sprintf("apps/a/slug-%d.tgz", build))
		cfg.CacheURL = sign("GET", "apps/a/cache.tgz")
		cfg.CachePutURL = sign("PUT", "apps/a/cache.tgz")
		if _, err := Run(t.Context(), cfg, bytes.NewReader(tartest.Map(t, source, 0o644)), discard()); err != nil {
			t.Fatalf("build %d: %v\n%s", build, err, out.String())
		}
		body, _, err := store.Get(t.Context(), fmt.Sprintf("apps/a/slug-%d.tgz", build))
		if err != nil {
			t.Fatalf("build %d: slug not stored: %v", build, err)
		}
		slug, _ := io.ReadAll(body)
		body.Close()
		if got, want := slugFiles(t, slug)["built.txt"], "version=abc123 greeting=none builds="+strconv.Itoa(build)+"\n"; got != want {
			t.Errorf("build %d: built.txt = %q, want %q (the cache went up and came back)", build, got, want)
		}
	}

	var out bytes.Buffer
	cfg := testConfig(t, &out)
	cfg.SlugPutURL = sign("PUT", "apps/a/slug-3.tgz")
	if _, err := Run(t.Context(), cfg, bytes.NewReader(tartest.Map(t, source, 0o644)), discard()); err != nil {
		t.Fatal(err)
	}
	_, err := Run(t.Context(), cfg, bytes.NewReader(tartest.Map(t, source, 0o644)), discard())
	if err == nil || !strings.Contains(err.Error(), "409") || strings.Contains(err.Error(), "sig=") {
		t.Fatalf("build with a used upload URL: err = %v, want a 409 that does not show the signature", err)
	}
}

// TestBuildStack checks that STACK is Stack unless the build's environment
// names another, and that detect, compile and release all see it.
func TestBuildStack(t *testing.T) {
	tests := []struct {
		name, stack, want string
		env               []string
	}{
		{name: "default", want: Stack},
		{name: "set by the build env", stack: "heroku-24", want: "heroku-24"},
		{name: "Config.Stack wins over a STACK in Env", stack: "heroku-22", env: []string{"STACK=other"}, want: "heroku-22"},
	}
	bp := writeBuildpack(t, map[string]string{
		"detect":  `echo "Stack $STACK"`,
		"compile": `echo "$STACK" > "$1/stack.txt"`,
		"release": `printf -- '---\ndefault_process_types:\n  web: echo %s\n' "$STACK"`,
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cfg := testConfig(t, &out)
			cfg.BuildpackURL = bp
			cfg.Stack = tt.stack
			cfg.Env = append(cfg.Env, tt.env...)
			writeApp(t, cfg.BuildDir, map[string]string{"README": "x"})
			res, err := Build(t.Context(), cfg, discard())
			if err != nil {
				t.Fatalf("Build: %v\n%s", err, out.String())
			}
			if got := res.Buildpacks[0]; got != "Stack "+tt.want {
				t.Errorf("detect saw %q, want STACK %s", got, tt.want)
			}
			if got := readFile(t, filepath.Join(cfg.BuildDir, "stack.txt")); got != tt.want+"\n" {
				t.Errorf("compile saw %q, want STACK %s", got, tt.want)
			}
			if got := res.ProcessTypes["web"]; got != "echo "+tt.want {
				t.Errorf("release saw %q, want STACK %s", got, tt.want)
			}
			said := strings.Contains(out.String(), "-----> Buildpacks see STACK="+tt.want+" (set in the build's environment)")
			if said != (tt.want != Stack) {
				t.Errorf("output tells of the STACK: %v, want %v:\n%s", said, tt.want != Stack, out.String())
			}
		})
	}
}

// A Procfile's release type is a process type like the others: gitreceive
// decides what to do with it.
func TestBuildKeepsReleaseType(t *testing.T) {
	var out bytes.Buffer
	cfg := testConfig(t, &out)
	writeApp(t, cfg.BuildDir, map[string]string{"Procfile": "web: ./serve\nrelease: ./migrate --yes\n"})
	res, err := Build(t.Context(), cfg, discard())
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out.String())
	}
	want := map[string]string{"web": "./serve", "release": "./migrate --yes"}
	if !maps.Equal(res.ProcessTypes, want) {
		t.Errorf("process types = %v, want %v", res.ProcessTypes, want)
	}
	var line bytes.Buffer
	if err := writeProcessTypesLine(&line, res.ProcessTypes); err != nil {
		t.Fatal(err)
	}
	if types, ok := ParseProcessTypesLine(line.String()); !ok || types["release"] != "./migrate --yes" {
		t.Errorf("process types line %q lacks release", line.String())
	}
}

// TestBuildTrustsExtraCAs checks the cluster's extra CA certificates: the
// buildpacks see the variables naming the bundle, and a buildpack is
// fetched from a server only they vouch for.
func TestBuildTrustsExtraCAs(t *testing.T) {
	bpDir := writeBuildpack(t, map[string]string{
		"detect":  "echo Certs",
		"compile": `for v in SSL_CERT_FILE NODE_EXTRA_CA_CERTS PIP_CERT REQUESTS_CA_BUNDLE CURL_CA_BUNDLE GIT_SSL_CAINFO; do echo "$v=${!v:-}"; done > "$1/certs.txt"; [ -n "$FLYNN_CA_CERTS" ]`,
	})
	archive := tarGz(t, bpDir, "")
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(archive) }))
	defer srv.Close()
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))

	var out bytes.Buffer
	cfg := testConfig(t, &out)
	cfg.CABundlePath = filepath.Join(t.TempDir(), "ca.crt")
	cfg.Env = append(cfg.Env, cabundle.EnvVar+"="+ca, "REQUESTS_CA_BUNDLE=/app/mine.pem")
	cfg.BuildpackURL = srv.URL + "/bp.tgz"
	writeApp(t, cfg.BuildDir, map[string]string{"README": "x"})
	if _, err := Build(t.Context(), cfg, discard()); err != nil {
		t.Fatalf("Build: %v\n%s", err, out.String())
	}
	var want strings.Builder
	for _, v := range cabundle.Vars() {
		value := cfg.CABundlePath
		if v == "REQUESTS_CA_BUNDLE" {
			value = "/app/mine.pem"
		}
		fmt.Fprintf(&want, "%s=%s\n", v, value)
	}
	if got := readFile(t, filepath.Join(cfg.BuildDir, "certs.txt")); got != want.String() {
		t.Errorf("the buildpack saw\n%s\nwant\n%s", got, want.String())
	}
	if !strings.Contains(readFile(t, cfg.CABundlePath), ca) {
		t.Error("the bundle lacks the extra certificate")
	}
	if !strings.Contains(out.String(), "-----> Trusting the cluster's extra CA certificates ("+cfg.CABundlePath+")\n") {
		t.Errorf("output does not say so:\n%s", out.String())
	}

	// Broken certificates stop the build before any buildpack.
	out.Reset()
	cfg = testConfig(t, &out)
	cfg.CABundlePath = filepath.Join(t.TempDir(), "ca.crt")
	cfg.Env = append(cfg.Env, cabundle.EnvVar+"=not a certificate")
	writeApp(t, cfg.BuildDir, map[string]string{"package.json": "{}"})
	_, err := Build(t.Context(), cfg, discard())
	if err == nil || !strings.Contains(err.Error(), "the cluster's extra CA certificates: FLYNN_CA_CERTS: no PEM certificate") {
		t.Errorf("err = %v, want the certificates named", err)
	}
	if strings.Contains(out.String(), "app detected") {
		t.Errorf("a buildpack ran:\n%s", out.String())
	}
}
