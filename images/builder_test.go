package images

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/syncbuf"
)

// fakeEngine keeps images in memory and records what it was asked to make.
type fakeEngine struct {
	mu      sync.Mutex
	images  map[string]string // ref → id
	imports []string          // first ref of each Import
	builds  []fakeBuild
	nextID  int
}

type fakeBuild struct {
	ref        string
	dockerfile string
	files      map[string]int64 // context path → mode
	contents   map[string]string
}

func newFakeEngine() *fakeEngine { return &fakeEngine{images: map[string]string{}} }

func (f *fakeEngine) ImageID(_ context.Context, ref string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.images[ref], nil
}

func (f *fakeEngine) Import(_ context.Context, rootfs io.Reader, _ []string, refs ...string) (string, error) {
	if _, err := io.Copy(io.Discard, rootfs); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.imports = append(f.imports, refs[0])
	return f.add(refs), nil
}

func (f *fakeEngine) Build(_ context.Context, buildContext io.Reader, refs ...string) (string, error) {
	b := fakeBuild{ref: refs[0], files: map[string]int64{}, contents: map[string]string{}}
	tr := tar.NewReader(buildContext)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return "", err
		}
		if hdr.Name == "Dockerfile" {
			b.dockerfile = string(data)
			continue
		}
		b.files[hdr.Name] = hdr.Mode
		b.contents[hdr.Name] = string(data)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.builds = append(f.builds, b)
	return f.add(refs), nil
}

func (f *fakeEngine) add(refs []string) string {
	f.nextID++
	id := fmt.Sprintf("sha256:%064d", f.nextID)
	for _, r := range refs {
		f.images[r] = id
	}
	return id
}

// fakeRootFS writes a tiny tar and counts its calls.
type fakeRootFS struct {
	mu    sync.Mutex
	calls []Debian
	err   error
}

func (r *fakeRootFS) WriteRootFS(_ context.Context, d Debian, w io.Writer) error {
	r.mu.Lock()
	r.calls = append(r.calls, d)
	r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		return err
	}
	return tw.Close()
}

func testImages(t *testing.T) ([]Image, string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	write(t, filepath.Join(bin, "router"), "router v1")
	write(t, filepath.Join(dir, "tree", "a.txt"), "a")
	write(t, filepath.Join(dir, "tree", "skip", "b.txt"), "b")
	stack := Image{Key: "stack", Name: "test/stack", Debian: &Debian{Suite: "bookworm", Variant: "minbase", Packages: []string{"bash", "curl"}}}
	build := Image{Key: "build", Name: "test/build", From: "stack", Packages: []string{"gcc", "make"}, Commands: []string{"mkdir /app"},
		Files: []File{{Source: filepath.Join(dir, "tree"), Dest: "/opt/tree", Exclude: []string{"skip"}}}}
	router := ComponentImage("test/", bin, Component{Key: "router", Binary: "router", From: "stack"})
	missing := ComponentImage("test/", bin, Component{Key: "gitreceive", Binary: "gitreceive", From: "stack"})
	return []Image{stack, build, router, missing}, dir
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBuildIsANoOpWhenNothingChanged(t *testing.T) {
	imgs, _ := testImages(t)
	engine, rootfs := newFakeEngine(), &fakeRootFS{}
	b := &Builder{Engine: engine, RootFS: rootfs, Log: slog.New(slog.DiscardHandler)}
	first, err := b.Build(t.Context(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rootfs.calls), 1; got != want {
		t.Fatalf("mmdebstrap runs = %d, want %d", got, want)
	}
	if got, want := len(engine.builds), 2; got != want { // build's layer + router
		t.Fatalf("docker builds = %d, want %d", got, want)
	}
	if _, ok := first["gitreceive"]; ok {
		t.Errorf("manifest has gitreceive, whose binary does not exist: %v", first)
	}
	second, err := b.Build(t.Context(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(rootfs.calls) != 1 || len(engine.builds) != 2 || len(engine.imports) != 1 {
		t.Errorf("second build made something: %d mmdebstrap runs, %d imports, %d builds", len(rootfs.calls), len(engine.imports), len(engine.builds))
	}
	for k, v := range first {
		if second[k] != v {
			t.Errorf("%s: second build %v, first %v", k, second[k], v)
		}
	}
	for _, key := range []string{"stack", "build", "router"} {
		if !strings.Contains(first[key].Ref, ":") || strings.HasSuffix(first[key].Ref, ":latest") {
			t.Errorf("%s ref %q is not content-tagged", key, first[key].Ref)
		}
		name := first[key].Ref[:strings.LastIndex(first[key].Ref, ":")]
		if engine.images[name+":latest"] != first[key].ID {
			t.Errorf("%s:latest is %q, want %q", name, engine.images[name+":latest"], first[key].ID)
		}
	}
}

func TestChangedBinaryRebuildsOnlyItsImage(t *testing.T) {
	imgs, dir := testImages(t)
	engine, rootfs := newFakeEngine(), &fakeRootFS{}
	b := &Builder{Engine: engine, RootFS: rootfs, Log: slog.New(slog.DiscardHandler)}
	first, err := b.Build(t.Context(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "bin", "router"), "router v2")
	second, err := b.Build(t.Context(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	if second["router"].Ref == first["router"].Ref {
		t.Errorf("router tag unchanged after its binary changed: %s", second["router"].Ref)
	}
	if second["stack"] != first["stack"] || second["build"] != first["build"] {
		t.Errorf("base images changed: %v → %v", first, second)
	}
	if got := len(rootfs.calls); got != 1 {
		t.Errorf("mmdebstrap runs = %d, want 1", got)
	}
}

func TestLayerContext(t *testing.T) {
	imgs, _ := testImages(t)
	engine := newFakeEngine()
	b := &Builder{Engine: engine, RootFS: &fakeRootFS{}, Log: slog.New(slog.DiscardHandler)}
	m, err := b.Build(t.Context(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	var router, build *fakeBuild
	for i := range engine.builds {
		switch {
		case strings.HasPrefix(engine.builds[i].ref, "test/router:"):
			router = &engine.builds[i]
		case strings.HasPrefix(engine.builds[i].ref, "test/build:"):
			build = &engine.builds[i]
		}
	}
	if router == nil || build == nil {
		t.Fatalf("builds = %+v", engine.builds)
	}
	for _, want := range []string{"FROM " + m["stack"].Ref + "\n", "COPY files/ /\n", `ENTRYPOINT ["/usr/local/bin/router"]`, `org.openflynn.image="test/router"`} {
		if !strings.Contains(router.dockerfile, want) {
			t.Errorf("router Dockerfile lacks %q:\n%s", want, router.dockerfile)
		}
	}
	if got := router.files["files/usr/local/bin/router"]; got != 0o755 {
		t.Errorf("router binary mode = %o, want 755 (files %v)", got, router.files)
	}
	if got := router.contents["files/usr/local/bin/router"]; got != "router v1" {
		t.Errorf("router binary content = %q", got)
	}
	if _, ok := build.files["files/opt/tree/a.txt"]; !ok {
		t.Errorf("build context lacks the tree: %v", build.files)
	}
	if _, ok := build.files["files/opt/tree/skip/b.txt"]; ok {
		t.Errorf("build context has an excluded file: %v", build.files)
	}
	wantRun := "FROM " + m["stack"].Ref + "\nRUN set -e; apt-get update -q; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-unsafe-io gcc make; apt-get clean; rm -rf /var/lib/apt/lists/*; mkdir /app\nCOPY files/ /\n"
	if !strings.HasPrefix(build.dockerfile, wantRun) {
		t.Errorf("build Dockerfile:\n%s\nwant it to begin\n%s", build.dockerfile, wantRun)
	}
	if strings.Contains(router.dockerfile, "RUN") {
		t.Errorf("router Dockerfile runs something, with no packages or commands:\n%s", router.dockerfile)
	}
}

func TestBuildErrors(t *testing.T) {
	imgs, _ := testImages(t)
	tests := []struct {
		name   string
		imgs   []Image
		rootfs *fakeRootFS
		want   string
	}{
		{"mmdebstrap fails", imgs[:1], &fakeRootFS{err: errors.New("no mirror")}, "no mirror"},
		{"required file missing", []Image{imgs[0], {Key: "x", Name: "test/x", From: "stack", Files: []File{{Source: "/nonexistent/x", Dest: "/x"}}}}, &fakeRootFS{}, "/nonexistent/x does not exist"},
		{"parent not built", []Image{imgs[2]}, &fakeRootFS{}, `parent image "stack"`},
		{"both Debian and From", []Image{{Key: "x", Name: "test/x", From: "stack", Debian: &Debian{}}}, &fakeRootFS{}, "both Debian and From"},
		{"neither Debian nor From", []Image{{Key: "x", Name: "test/x", Packages: []string{"gcc"}}}, &fakeRootFS{}, "neither Debian nor From"},
		{"files on a Debian root", []Image{{Key: "x", Name: "test/x", Debian: &Debian{}, Files: []File{{Source: "/etc/hostname", Dest: "/x"}}}}, &fakeRootFS{}, "takes no Commands or Files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Builder{Engine: newFakeEngine(), RootFS: tt.rootfs, Log: slog.New(slog.DiscardHandler)}
			_, err := b.Build(t.Context(), tt.imgs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRootTagIgnoresPackageOrder(t *testing.T) {
	a := Image{Name: "x", Debian: &Debian{Suite: "bookworm", Packages: []string{"a", "b"}}}
	b := Image{Name: "x", Debian: &Debian{Suite: "bookworm", Packages: []string{"b", "a"}}}
	c := Image{Name: "x", Debian: &Debian{Suite: "bookworm", Packages: []string{"a", "b", "c"}}}
	if rootTag(a) != rootTag(b) {
		t.Errorf("package order changed the tag: %s vs %s", rootTag(a), rootTag(b))
	}
	if rootTag(a) == rootTag(c) {
		t.Errorf("an added package kept the tag %s", rootTag(a))
	}
	if len(rootTag(a)) != tagLength {
		t.Errorf("tag %q has length %d, want %d", rootTag(a), len(rootTag(a)), tagLength)
	}
}

func TestLayerTagFollowsPackagesAndCommands(t *testing.T) {
	base := Image{Name: "x", From: "stack", Packages: []string{"gcc"}, Commands: []string{"mkdir /app"}}
	baseTag, err := layerTag(base, "sha256:1")
	if err != nil {
		t.Fatal(err)
	}
	for name, img := range map[string]Image{
		"another package": {Name: "x", From: "stack", Packages: []string{"gcc", "make"}, Commands: base.Commands},
		"another command": {Name: "x", From: "stack", Packages: base.Packages, Commands: []string{"mkdir /srv"}},
		"no packages":     {Name: "x", From: "stack", Commands: base.Commands},
	} {
		tag, err := layerTag(img, "sha256:1")
		if err != nil {
			t.Fatal(err)
		}
		if tag == baseTag {
			t.Errorf("%s: tag %s unchanged", name, tag)
		}
	}
	if tag, _ := layerTag(base, "sha256:2"); tag == baseTag {
		t.Errorf("another parent: tag %s unchanged", tag)
	}
}

func TestSelectAddsParents(t *testing.T) {
	imgs := Flynn(Sources{Repo: "/repo", GoRoot: "/go"})
	var keys []string
	for _, img := range Select(imgs, []string{"slugbuilder", "router"}) {
		keys = append(keys, img.Key)
	}
	if want := []string{"base", "stack", "build", "router", "slugbuilder"}; !slices.Equal(keys, want) {
		t.Errorf("Select = %v, want %v", keys, want)
	}
}

func TestMmdebstrapArgs(t *testing.T) {
	d := Debian{Suite: "bookworm", Variant: "minbase", Packages: []string{"bash", "curl"}, Options: []string{"--aptopt=X"}}
	got := (&Mmdebstrap{}).Args(d, "", "")
	want := []string{"--variant=minbase", "--include=bash,curl", "--aptopt=X", "bookworm", "-"}
	if !slices.Equal(got, want) {
		t.Errorf("Args = %q, want %q", got, want)
	}
	got = (&Mmdebstrap{}).Args(d, "/cache/bookworm", "/cache/.out-1")
	want = []string{"--variant=minbase", "--include=bash,curl", "--aptopt=X",
		"--skip=essential/unlink", `--setup-hook=mkdir -p "$1"/var/cache/apt/archives/`,
		"--setup-hook=sync-in /cache/bookworm /var/cache/apt/archives/",
		"--customize-hook=sync-out /var/cache/apt/archives /cache/.out-1", "bookworm", "-"}
	if !slices.Equal(got, want) {
		t.Errorf("Args with a cache = %q, want %q", got, want)
	}
}

// A build's packages land in the suite's cache, and the build's own
// directory is gone afterwards.
func TestMmdebstrapCache(t *testing.T) {
	dir := t.TempDir()
	// A stand-in for mmdebstrap: it "downloads" a package into the
	// directory its sync-out hook names.
	prog := filepath.Join(dir, "mmdebstrap")
	write(t, prog, "#!/bin/sh\nfor a; do case \"$a\" in --customize-hook=sync-out*) out=${a##* };; esac; done\necho deb > \"$out/bash_5.2_amd64.deb\"\n")
	if err := os.Chmod(prog, 0o755); err != nil {
		t.Fatal(err)
	}
	m := &Mmdebstrap{Path: prog, CacheDir: filepath.Join(dir, "cache")}
	if err := m.WriteRootFS(t.Context(), Debian{Suite: "trixie", Variant: "minbase"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cache", "trixie", "bash_5.2_amd64.deb")); err != nil {
		t.Errorf("the package is not in the cache: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "cache", ".out-*")); len(left) != 0 {
		t.Errorf("build directories left: %v", left)
	}
}

func TestManifestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "images.json")
	m := Manifest{"router": {Ref: "flynn/router:abc", ID: "sha256:1"}}
	if err := m.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if got["router"] != m["router"] || len(got) != 1 {
		t.Errorf("ReadManifest = %v, want %v", got, m)
	}
}

// gateRootFS blocks every root until want of them run at once, or fails
// the one for failSuite, or blocks the one for hangSuite until its
// context ends.
type gateRootFS struct {
	mu        sync.Mutex
	inside    int
	want      int
	all       chan struct{} // closed when want roots are inside at once
	failSuite string
	hangSuite string
	// hangStarted, when set, is closed when the hung root begins, and
	// the failing root fails only then: a build is stopped, not kept
	// from starting.
	hangStarted chan struct{}
	hangEnded   chan struct{} // closed when the hung root's context ended
	// wait, when set, must return before any root is written.
	wait func(ctx context.Context) error
}

func (g *gateRootFS) WriteRootFS(ctx context.Context, d Debian, w io.Writer) error {
	switch d.Suite {
	case g.failSuite:
		if g.hangStarted != nil {
			select {
			case <-g.hangStarted:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return errors.New("no mirror for " + d.Suite)
	case g.hangSuite:
		if g.hangStarted != nil {
			close(g.hangStarted)
		}
		<-ctx.Done()
		close(g.hangEnded)
		return ctx.Err()
	}
	if g.wait != nil {
		if err := g.wait(ctx); err != nil {
			return err
		}
	}
	if g.all != nil {
		g.mu.Lock()
		g.inside++
		if g.inside == g.want {
			close(g.all)
		}
		g.mu.Unlock()
		select {
		case <-g.all:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return (&fakeRootFS{}).WriteRootFS(ctx, d, w)
}

func roots(suites ...string) []Image {
	var imgs []Image
	for _, s := range suites {
		imgs = append(imgs, Image{Key: s, Name: "test/" + s, Debian: &Debian{Suite: s, Variant: "minbase"}})
	}
	return imgs
}

// The Debian roots build at once, as many as Parallel allows; an image
// on top of one waits only for its own parent.
func TestBuildOverlapsRoots(t *testing.T) {
	imgs := roots("a", "b", "c")
	dir := t.TempDir()
	write(t, filepath.Join(dir, "bin", "x"), "x")
	imgs = append(imgs, ComponentImage("test/", filepath.Join(dir, "bin"), Component{Key: "x", Binary: "x", From: "b"}))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b := &Builder{Engine: newFakeEngine(), RootFS: &gateRootFS{want: 3, all: make(chan struct{})}, Log: slog.New(slog.DiscardHandler), Parallel: 3}
	m, err := b.Build(ctx, imgs)
	if err != nil {
		t.Fatalf("Build: %v (the three roots never ran at once)", err)
	}
	if len(m) != 4 || m["x"].Ref == "" {
		t.Fatalf("manifest %v, want a, b, c and x", m)
	}
	for _, name := range []string{"test/a", "test/b", "test/c", "test/x"} {
		if _, ok := b.Estimates[name]; !ok {
			t.Errorf("no build time kept for %s: %v", name, b.Estimates)
		}
	}
}

// The first failure is the one reported, and it stops the builds still
// running rather than leaving them to finish.
func TestBuildFailureStopsTheOthers(t *testing.T) {
	rootfs := &gateRootFS{failSuite: "broken", hangSuite: "slow", hangStarted: make(chan struct{}), hangEnded: make(chan struct{})}
	b := &Builder{Engine: newFakeEngine(), RootFS: rootfs, Log: slog.New(slog.DiscardHandler), Parallel: 2}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := b.Build(ctx, roots("slow", "broken"))
	if err == nil || !strings.Contains(err.Error(), "image test/broken") || !strings.Contains(err.Error(), "no mirror for broken") {
		t.Fatalf("Build = %v, want the broken root's failure", err)
	}
	select {
	case <-rootfs.hangEnded:
	default:
		t.Fatal("the slow root's build was not stopped")
	}
}

// A build that runs long says so at every ProgressEvery, with its time so
// far and its estimate: last time's, or a typical one the first time.
func TestBuildReportsProgress(t *testing.T) {
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	rootfs := &gateRootFS{wait: func(ctx context.Context) error {
		return poll.Wait(ctx, 30*time.Second, func() error {
			if n := strings.Count(logs.String(), "still building"); n < 2 {
				return fmt.Errorf("%d progress lines", n)
			}
			return nil
		})
	}}
	b := &Builder{Engine: newFakeEngine(), RootFS: rootfs, Log: log, ProgressEvery: 5 * time.Millisecond,
		Estimates: BuildTimes{"test/known": 90 * time.Second}}
	if _, err := b.Build(t.Context(), roots("known", "new")); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, want := range []string{
		`msg=building image=test/known last_time=1m30s`,
		`msg="still building" image=test/known`, `estimate=1m30s estimate_from="last time here"`,
		`msg="still building" image=test/new`, "estimate=" + typicalRootBuild.String() + ` estimate_from="typical first build"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("progress log lacks %q:\n%s", want, out)
		}
	}
	if _, ok := b.Estimates["test/new"]; !ok || b.Estimates["test/known"] >= 90*time.Second {
		t.Errorf("build times after: %v, want this build's", b.Estimates)
	}
	path := filepath.Join(t.TempDir(), "times.json")
	times := BuildTimes{"test/a": 1500 * time.Millisecond, "test/b": 4 * time.Minute}
	if err := times.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadBuildTimes(path); err != nil || !maps.Equal(got, times) {
		t.Fatalf("ReadBuildTimes = %v, %v; want %v", got, err, times)
	}
	if got, err := ReadBuildTimes(filepath.Join(t.TempDir(), "none.json")); err != nil || len(got) != 0 {
		t.Fatalf("ReadBuildTimes of no file = %v, %v; want none", got, err)
	}
}

// TestBuildLeavesLaterImagesForLater: Later images that do not exist are
// neither built nor in the manifest, with their children; a run without
// Later builds them, and then a run with Later finds them and lists them.
func TestBuildLeavesLaterImagesForLater(t *testing.T) {
	imgs, _ := testImages(t)
	other := Image{Key: "stack-other", Name: "test/stack-other", Debian: &Debian{Suite: "trixie", Variant: "minbase"}}
	otherRouter := imgs[2]
	otherRouter.Key, otherRouter.Name, otherRouter.From = "router-other", "test/router-other", "stack-other"
	imgs = append(imgs, other, otherRouter)
	later := map[string]bool{"stack-other": true, "router-other": true}
	engine, rootfs := newFakeEngine(), &fakeRootFS{}
	b := &Builder{Engine: engine, RootFS: rootfs, Log: slog.New(slog.DiscardHandler), Later: later}
	first, err := b.Build(t.Context(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(first)); !slices.Equal(got, []string{"build", "router", "stack"}) {
		t.Fatalf("manifest with Later = %v, want build, router, stack", got)
	}
	if len(rootfs.calls) != 1 || rootfs.calls[0].Suite != "bookworm" {
		t.Fatalf("mmdebstrap runs = %v, want bookworm's alone", rootfs.calls)
	}

	b.Later = nil
	full, err := b.Build(t.Context(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != 5 || full["router-other"].Ref == "" {
		t.Fatalf("manifest without Later = %v, want all 5 but the missing gitreceive", full)
	}

	b.Later = later
	builds := len(engine.builds) + len(engine.imports)
	again, err := b.Build(t.Context(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(again, full) {
		t.Errorf("manifest with Later once they exist = %v, want %v", again, full)
	}
	if got := len(engine.builds) + len(engine.imports); got != builds {
		t.Errorf("a run with Later built %d images, want none", got-builds)
	}
}

func TestOtherStackKeys(t *testing.T) {
	got := OtherStackKeys(Flynn(Sources{Repo: "/repo", GoRoot: "/go"}))
	want := []string{"base-trixie", "build-trixie", "slugbuilder-trixie", "slugrunner-trixie", "stack-trixie"}
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, want) {
		t.Errorf("OtherStackKeys(Flynn) = %v, want %v", keys, want)
	}
}
