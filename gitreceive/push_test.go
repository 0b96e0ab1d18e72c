package gitreceive_test

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openflynn/flynn/blobstore/signed"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/gitreceive"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/syncbuf"
)

func TestUnknownKeyRefused(t *testing.T) {
	h := newHarness(t)
	h.createApp("example")
	w := h.newWorkdir("example")
	w.key = h.newKey(false)
	w.commit("first", map[string]string{"Procfile": "web: ./web\n"})
	out, _, err := w.push("main")
	if err == nil {
		t.Fatalf("push with an unknown key succeeded:\n%s", out)
	}
	if !strings.Contains(out, "unknown SSH key SHA256:") || !strings.Contains(out, "flynn key add") {
		t.Fatalf("output does not explain the refusal:\n%s", out)
	}
	if started, _, _, _, _ := h.runner.stats(); started != 0 {
		t.Fatalf("%d builds started", started)
	}
}

func TestPushToMissingAppRefused(t *testing.T) {
	h := newHarness(t)
	w := h.newWorkdir("nope")
	w.commit("first", map[string]string{"Procfile": "web: ./web\n"})
	out, _, err := w.push("main")
	if err == nil {
		t.Fatalf("push to a missing app succeeded:\n%s", out)
	}
	if !strings.Contains(out, `no app named "nope"`) {
		t.Fatalf("output does not name the missing app:\n%s", out)
	}
}

var versionLine = regexp.MustCompile(`Deploying release (v\d+)`)

// verifySigned returns what the signed URL raw grants for method, checked
// as the blobstore does with the key gitreceive signs with, or nil.
func verifySigned(t *testing.T, raw, method string) *signed.Grant {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.User != nil {
		t.Errorf("URL %q: %v (credentials %v)", raw, err, u.User)
		return nil
	}
	g, err := signed.Verify(controllerKey, method, strings.TrimPrefix(u.Path, "/"), u.RawQuery, time.Now())
	if err != nil {
		t.Errorf("URL %q for %s: %v", raw, method, err)
		return nil
	}
	return g
}

func TestPushBuildsAndDeploys(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("example")
	ctx := t.Context()
	w := h.newWorkdir("example")
	first := w.commit("first", map[string]string{"Procfile": "web: ./web\nworker: ./worker\n", "web": "#!/bin/sh\n"})

	out, took, err := w.push("main")
	if err != nil {
		t.Fatalf("first push: %v\n%s", err, out)
	}
	t.Logf("first push took %v", took)
	for _, want := range []string{
		"remote: -----> Building example...",
		"remote: -----> Fake buildpack app detected",
		"remote: -----> Compiled 2 files", // the job's stderr comes through too
		"remote: =====> Application deployed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FLYNN_PROCESS_TYPES") {
		t.Errorf("the machine-readable types line reached the user:\n%s", out)
	}

	rel, err := h.client.AppRelease(ctx, app.ID)
	if err != nil {
		t.Fatalf("app has no release after the push: %v", err)
	}
	if rel.Version != 1 || len(rel.Processes) != 2 {
		t.Fatalf("release v%d with processes %v, want v1 with web and worker", rel.Version, rel.Processes)
	}
	if web := rel.Processes["web"]; strings.Join(web.Cmd, " ") != "start web" || len(web.Ports) != 0 {
		t.Errorf("web process = %+v, want cmd [start web] and no ports", web)
	}
	slugURL := regexp.MustCompile(`^` + regexp.QuoteMeta(blobstoreURL) + `/(apps/` + app.ID + `/slug-[0-9a-f-]{36}\.tgz)\?`).FindStringSubmatch(rel.Env["SLUG_URL"])
	if slugURL == nil {
		t.Fatalf("SLUG_URL = %q", rel.Env["SLUG_URL"])
	}
	slugPath := slugURL[1]
	// The release's slug URL reads that slug for years: rollbacks work.
	if g := verifySigned(t, rel.Env["SLUG_URL"], "GET"); g == nil || g.Path != slugPath || time.Until(g.Expires) < 9*365*24*time.Hour {
		t.Errorf("SLUG_URL grants %+v, want a GET of %s for about %v", g, slugPath, gitreceive.SlugURLLifetime)
	}
	art, err := h.client.Artifact(ctx, rel.ArtifactID)
	if err != nil || art.URI != slugrunnerImage {
		t.Errorf("artifact = %+v, %v; want %s", art, err, slugrunnerImage)
	}
	spec := h.runner.lastSpec()
	if spec.Artifact.URI != slugbuilderImage {
		t.Errorf("build ran %s, want %s", spec.Artifact.URI, slugbuilderImage)
	}
	wantResources := controller.Resources{Memory: gitreceive.DefaultBuildMemory, MaxProcs: gitreceive.DefaultBuildPids, Disk: gitreceive.DefaultBuildDisk}
	if r := spec.Process.Resources; r == nil || *r != wantResources {
		t.Errorf("build job resources = %+v, want %+v", r, wantResources)
	}
	if got := spec.Env["SOURCE_VERSION"]; got != first {
		t.Errorf("SOURCE_VERSION = %q, want %s", got, first)
	}
	// The build gets signed URLs, each for one method on one path, and
	// never the key.
	for name, v := range spec.Env {
		if strings.Contains(v, controllerKey) {
			t.Errorf("the build's %s holds the key: %q", name, v)
		}
	}
	cachePath := "apps/" + app.ID + "/cache.tgz"
	for _, u := range []struct{ name, method, path string }{
		{"SLUG_PUT_URL", "PUT", slugPath},
		{"CACHE_URL", "GET", cachePath},
		{"CACHE_PUT_URL", "PUT", cachePath},
	} {
		g := verifySigned(t, spec.Env[u.name], u.method)
		if g == nil || g.Path != u.path {
			t.Errorf("%s = %q grants %+v, want %s of %s", u.name, spec.Env[u.name], g, u.method, u.path)
			continue
		}
		if left := time.Until(g.Expires); left < gitreceive.DefaultBuildTimeout || left > gitreceive.DefaultBuildTimeout+time.Hour {
			t.Errorf("%s expires in %v, want a little over the build timeout (%v)", u.name, left, gitreceive.DefaultBuildTimeout)
		}
	}
	if spec.Job.Meta["flynn.build.app-id"] != app.ID {
		t.Errorf("build job meta = %v", spec.Job.Meta)
	}

	// Config vars are kept from release to release.
	withVar := &controller.Release{AppID: app.ID, ArtifactID: rel.ArtifactID, Env: map[string]string{"SLUG_URL": rel.Env["SLUG_URL"], "GREETING": "hi"}, Processes: rel.Processes}
	if err := h.client.CreateRelease(ctx, withVar); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Deploy(ctx, app.ID, withVar.ID); err != nil {
		t.Fatal(err)
	}

	// A second push sends only the new objects.
	w.commit("second", map[string]string{"Procfile": "web: ./web\n"})
	out, took, err = w.push("main")
	if err != nil {
		t.Fatalf("second push: %v\n%s", err, out)
	}
	t.Logf("second push took %v", took)
	if m := regexp.MustCompile(`Writing objects: 100% \((\d+)/`).FindStringSubmatch(out); m == nil || m[1] != "3" {
		t.Errorf("second push wrote %v objects, want 3 (commit, tree, blob: incremental)\n%s", m, out)
	}
	if m := versionLine.FindStringSubmatch(out); m == nil || m[1] != "v3" {
		t.Errorf("second push deployed %v, want v3\n%s", m, out)
	}
	rel2, err := h.client.AppRelease(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rel2.Env["GREETING"] != "hi" || len(rel2.Processes) != 1 || rel2.Env["SLUG_URL"] == rel.Env["SLUG_URL"] {
		t.Errorf("second release env %v processes %v: want GREETING kept, a new slug, web only", rel2.Env, rel2.Processes)
	}
	if spec := h.runner.lastSpec(); spec.Env["GREETING"] != "hi" {
		t.Errorf("the build did not get the app's config vars: %v", spec.Env)
	}

	// Rewriting history is refused unless forced.
	other := h.newWorkdir("example")
	other.commit("unrelated", map[string]string{"Procfile": "web: ./other\n"})
	out, _, err = other.push("main")
	if err == nil || !strings.Contains(out, "rejected") {
		t.Fatalf("non-fast-forward push: err %v\n%s", err, out)
	}
	if cur, _ := h.client.AppRelease(ctx, app.ID); cur.ID != rel2.ID {
		t.Fatalf("a refused push changed the release")
	}
	out, _, err = other.push("--force", "main")
	if err != nil || !strings.Contains(out, "Application deployed") {
		t.Fatalf("forced push: %v\n%s", err, out)
	}

	// Other branches are stored, not deployed.
	started, _, _, _, _ := h.runner.stats()
	other.git("checkout", "--quiet", "-b", "feature")
	other.commit("feature", map[string]string{"x": "y"})
	out, _, err = other.push("feature")
	if err != nil || !strings.Contains(out, "Storing feature; only pushes to main or master are deployed") {
		t.Fatalf("feature push: %v\n%s", err, out)
	}
	if now, _, _, _, _ := h.runner.stats(); now != started {
		t.Fatalf("a feature branch push started a build")
	}
}

func TestFailedBuildKeepsRelease(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("example")
	w := h.newWorkdir("example")
	w.commit("first", map[string]string{"Procfile": "web: ./web\n"})
	if out, _, err := w.push("main"); err != nil {
		t.Fatalf("first push: %v\n%s", err, out)
	}
	before, err := h.client.AppRelease(t.Context(), app.ID)
	if err != nil {
		t.Fatal(err)
	}

	w.commit("broken", map[string]string{"fail.txt": "no start command found"})
	out, _, err := w.push("main")
	if err == nil {
		t.Fatalf("a failing build pushed successfully:\n%s", out)
	}
	for _, want := range []string{"remote:  !     no start command found", "remote:  !     Build failed", "pre-receive hook declined"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	after, err := h.client.AppRelease(t.Context(), app.ID)
	if err != nil || after.ID != before.ID {
		t.Fatalf("release changed after a failed build: %v → %v (%v)", before.ID, after.ID, err)
	}
	// The refused commit is not on the server's main: fixing it is a
	// plain fast-forward push.
	w.commit("fixed", map[string]string{"fail.txt": ""})
	if out, _, err := w.push("main"); err != nil || !strings.Contains(out, "Application deployed") {
		t.Fatalf("push after the fix: %v\n%s", err, out)
	}
}

func TestFailedDeployReported(t *testing.T) {
	h := newHarness(t)
	h.createApp("example")
	h.mu.Lock()
	h.failDeploys = true
	h.mu.Unlock()
	w := h.newWorkdir("example")
	w.commit("first", map[string]string{"Procfile": "web: ./web\n"})
	out, _, err := w.push("main")
	if err == nil || !strings.Contains(out, "Deploy failed: web job crashed") {
		t.Fatalf("push with a failing deploy: %v\n%s", err, out)
	}
	// The crashed job is shown with how it ended and what it wrote.
	if !strings.Contains(out, " exited with status 1; its last lines:") || !strings.Contains(out, " !       "+strings.TrimSpace(crashLog)) {
		t.Fatalf("push did not show the crashed job and its output:\n%s", out)
	}
}

func TestConcurrentPushesSerialised(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("example")
	base := h.newWorkdir("example")
	base.commit("base", map[string]string{"Procfile": "web: ./web\n"})
	if out, _, err := base.push("main"); err != nil {
		t.Fatalf("base push: %v\n%s", err, out)
	}
	a := h.newWorkdir("example")
	a.git("pull", "--quiet", "flynn", "main")
	a.commit("a", map[string]string{"gate.txt": "wait"})
	b := h.newWorkdir("example")
	b.git("pull", "--quiet", "flynn", "main")
	b.commit("b", map[string]string{"b.txt": "b"})

	var outA, outB syncbuf.Buffer
	pushA := a.pushCmd(&outA, "--force", "main")
	if err := pushA.Start(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "push A's build to reach the gate", func() bool { return strings.Contains(outA.String(), "At the gate") })
	pushB := b.pushCmd(&outB, "--force", "main")
	if err := pushB.Start(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "push B to wait for A", func() bool { return strings.Contains(outB.String(), "Waiting for another push to example") })
	if started, _, _, _, _ := h.runner.stats(); started != 2 { // base and A
		t.Fatalf("%d builds started while A held the app, want 2", started)
	}
	if err := os.WriteFile(filepath.Join(h.runner.gateDir, "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	errA, errB := pushA.Wait(), pushB.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("pushes: A %v, B %v\nA:\n%s\nB:\n%s", errA, errB, outA.String(), outB.String())
	}
	if _, _, maxActive, _, _ := h.runner.stats(); maxActive != 1 {
		t.Fatalf("%d builds of one app ran at once", maxActive)
	}
	rel, err := h.client.AppRelease(t.Context(), app.ID)
	if err != nil || rel.Version != 3 {
		t.Fatalf("release after two pushes = %+v, %v; want v3", rel, err)
	}
}

func TestDisconnectCancelsBuild(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("example")
	w := h.newWorkdir("example")
	w.commit("hang", map[string]string{"Procfile": "web: ./web\n", "hang.txt": "x"})
	var out syncbuf.Buffer
	push := w.pushCmd(&out, "main")
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the build to start", func() bool { return strings.Contains(out.String(), "Hanging") })
	// Ctrl-C: the terminal signals the whole process group.
	if err := syscall.Kill(-push.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	_ = push.Wait()
	poll.Until(t, 30*time.Second, "the build job to be stopped", func() bool {
		_, active, _, cancelled, _ := h.runner.stats()
		return active == 0 && cancelled == 1
	})
	if _, err := h.client.AppRelease(t.Context(), app.ID); !httpjson.IsNotFound(err) {
		t.Fatalf("a cancelled push left a release (err %v)", err)
	}
	// The app is free again: the next push goes through at once.
	w.commit("unhang", map[string]string{"hang.txt": ""})
	if out, _, err := w.push("main"); err != nil || strings.Contains(out, "Waiting for another push") {
		t.Fatalf("push after a cancelled one: %v\n%s", err, out)
	}
}
