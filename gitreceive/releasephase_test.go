package gitreceive_test

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/gitreceive"
)

// hasLine reports whether the output of a push has line, git's padding
// of the remote's lines trimmed.
func hasLine(out, line string) bool {
	for l := range strings.Lines(out) {
		if strings.TrimRight(l, " \r\n") == line {
			return true
		}
	}
	return false
}

// expectLines fails t for each line of want that out lacks.
func expectLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, line := range want {
		if !hasLine(out, line) {
			t.Errorf("output lacks the line %q:\n%s", line, out)
		}
	}
}

// releaseJobs are the release command jobs run so far.
func (h *harness) releaseJobs() []map[string]string {
	var jobs []map[string]string
	for _, s := range h.runner.appJobs() {
		if slices.Equal(s.Job.Args, []string{"start", gitreceive.ReleaseProcessType}) {
			jobs = append(jobs, map[string]string{"release": s.Job.ReleaseID, "type": s.Job.Type, "phase": s.Job.Meta[gitreceive.PushMetaPhase]})
		}
	}
	return jobs
}

// setEnv is `flynn env set`.
func (h *harness) setEnv(app *controller.App, set map[string]string) *controller.Release {
	h.t.Helper()
	got, err := h.client.PatchRelease(h.t.Context(), app.ID, controller.ReleasePatch{Env: &controller.EnvPatch{Set: set}})
	if err != nil {
		h.t.Fatal(err)
	}
	return got.Release
}

// TestReleasePhase: a Procfile's release command runs before the deploy,
// as a one-off job of the new release with the app's env; when it fails
// nothing is deployed and the push fails with its output.
func TestReleasePhase(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("example")
	ctx := t.Context()
	h.setEnv(app, map[string]string{"GREETING": "hi"}) // v1, config alone
	w := h.newWorkdir("example")

	w.commit("first", map[string]string{"Procfile": "web: ./web\nrelease: echo \"migrating for $GREETING\"; echo done >&2\n"})
	out := w.pushOK(t, "main")
	expectLines(t, out,
		"remote: -----> Running release command...",
		"remote: migrating for hi",
		"remote: done",
		"remote: -----> Deploying release v2 (process types: web)...",
		"remote: =====> Application deployed",
	)
	if strings.Index(out, "Running release command") > strings.Index(out, "Deploying release") {
		t.Errorf("deployed before the release command ran:\n%s", out)
	}
	v2, err := h.client.AppRelease(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != 2 || v2.Env["GREETING"] != "hi" || !slices.Equal(slices.Sorted(maps.Keys(v2.Processes)), []string{"web"}) {
		t.Fatalf("release after the push = v%d env %v processes %v; want v2 with the app's env and web alone (release is not scaled)", v2.Version, v2.Env, v2.Processes)
	}
	jobs := h.releaseJobs()
	if want := []map[string]string{{"release": v2.ID, "type": "", "phase": "release"}}; !slices.EqualFunc(jobs, want, maps.Equal) {
		t.Fatalf("release jobs = %v, want %v", jobs, want)
	}
	// `flynn scale release=1` is refused: the release has no such type.
	if err := h.client.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: v2.ID, Processes: map[string]int{"release": 1}}); err == nil {
		t.Errorf("scaling the release type was accepted")
	}

	// A failing release command: nothing deployed, its output shown.
	w.commit("broken", map[string]string{"Procfile": "web: ./web\nrelease: echo 'relation \"users\" already exists' >&2; exit 3\n"})
	out, _, err = w.push("main")
	if err == nil {
		t.Fatalf("a push whose release command failed succeeded:\n%s", out)
	}
	expectLines(t, out,
		"remote: relation \"users\" already exists",
		"remote:  !     Release command failed (exit status 3); example stays at v2",
	)
	if strings.Contains(out, "Deploying release") || !strings.Contains(out, "pre-receive hook declined") {
		t.Errorf("a failed release command was followed by a deploy, or the push was not refused:\n%s", out)
	}
	if cur, err := h.client.AppRelease(ctx, app.ID); err != nil || cur.ID != v2.ID {
		t.Fatalf("current release after the failed release command = %+v, %v; want v2", cur, err)
	}
	if n := len(h.releaseJobs()); n != 2 {
		t.Errorf("%d release jobs, want 2", n)
	}

	// Fixed: deployed.
	w.commit("fixed", map[string]string{"Procfile": "web: ./web\nworker: ./worker\nrelease: true\n"})
	if out, _, err := w.push("main"); err != nil || !strings.Contains(out, "Deploying release v4 (process types: web, worker)") {
		t.Fatalf("push after the fix: %v\n%s", err, out)
	}
}

// TestReleasePhaseKeepsEnvChange: an `env set` made while the release
// command runs is not undone: the push makes its release again from the
// new env, runs the command again, and deploys that release.
func TestReleasePhaseKeepsEnvChange(t *testing.T) {
	var (
		once sync.Once
		h    *harness
		app  *controller.App
	)
	h = newHarnessWith(t, harnessOptions{intercept: func(r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/apps/"+app.ID+"/jobs" {
			once.Do(func() { h.setEnv(app, map[string]string{"ADDED": "during"}) })
		}
	}})
	app = h.createApp("example")
	w := h.newWorkdir("example")
	w.commit("first", map[string]string{"Procfile": "web: ./web\nrelease: echo \"release with ADDED=$ADDED\"\n"})
	out := w.pushOK(t, "main")
	expectLines(t, out,
		"remote: release with ADDED=",
		"remote: -----> example's env changed while the release command ran (now v2); releasing again from it...",
		"remote: release with ADDED=during",
		"remote: -----> Deploying release v3 (process types: web)...",
	)
	cur, err := h.client.AppRelease(t.Context(), app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version != 3 || cur.Env["ADDED"] != "during" || cur.ArtifactID == "" {
		t.Fatalf("current release = v%d env %v; want v3, the push's, with ADDED", cur.Version, cur.Env)
	}
	if jobs := h.releaseJobs(); len(jobs) != 2 || jobs[1]["release"] != cur.ID {
		t.Fatalf("release jobs = %v, want two, the second of %s", jobs, cur.ID)
	}
}

// TestReleasePhaseDeployRace: an `env set` that lands between the push's
// last check and its deploy is made again on top of the push's release.
func TestReleasePhaseDeployRace(t *testing.T) {
	var (
		once sync.Once
		h    *harness
		app  *controller.App
	)
	h = newHarnessWith(t, harnessOptions{intercept: func(r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/apps/"+app.ID+"/deploy" {
			once.Do(func() { h.setEnv(app, map[string]string{"RACED": "yes"}) })
		}
	}})
	app = h.createApp("example")
	h.setEnv(app, map[string]string{"KEEP": "1"})
	w := h.newWorkdir("example")
	w.commit("first", map[string]string{"Procfile": "web: ./web\nrelease: true\n"})
	out := w.pushOK(t, "main")
	if want := "remote: -----> example's env changed as v2 was deployed; v4 keeps that change"; !hasLine(out, want) {
		t.Errorf("output lacks the line %q:\n%s", want, out)
	}
	cur, err := h.client.AppRelease(t.Context(), app.ID)
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := h.client.Release(t.Context(), h.releaseJobs()[0]["release"])
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version != 4 || cur.Env["RACED"] != "yes" || cur.Env["KEEP"] != "1" || cur.ArtifactID != pushed.ArtifactID || cur.Env["SLUG_URL"] != pushed.Env["SLUG_URL"] {
		t.Fatalf("current release = v%d env %v artifact %s; want v4: the push's with RACED and KEEP", cur.Version, cur.Env, cur.ArtifactID)
	}
}
