package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
)

func TestEnvReleasesRollback(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	v1 := h.deploy(app, map[string]string{"KEEP": "yes"})
	ctx := context.Background()

	if out := h.ok("-a", "example", "env", "set", "A=1", "B=two=2"); !strings.Contains(out, "Deployed release v2 of example in ") {
		t.Fatalf("env set printed %q", out)
	}
	current := func() *controller.Release {
		t.Helper()
		rel, err := h.api.AppRelease(ctx, app.ID)
		if err != nil {
			t.Fatal(err)
		}
		return rel
	}
	v2 := current()
	if want := map[string]string{"KEEP": "yes", "A": "1", "B": "two=2"}; v2.Version != 2 || !reflect.DeepEqual(v2.Env, want) {
		t.Fatalf("after env set: %s env %v, want v2 env %v", controller.ReleaseVersion(v2.Version), v2.Env, want)
	}
	if v2.ArtifactID != v1.ArtifactID || !reflect.DeepEqual(v2.Processes, v1.Processes) {
		t.Fatal("env set changed more than the env")
	}
	if out := h.ok("-a", "example", "env", "get", "B"); out != "two=2\n" {
		t.Fatalf("env get B = %q", out)
	}
	h.fails("C is not set for example", "-a", "example", "env", "get", "C")
	if out := h.ok("-a", "example", "env"); out != "A=1\nB=two=2\nKEEP=yes\n" {
		t.Fatalf("env = %q", out)
	}
	h.ok("-a", "example", "env", "unset", "A", "B")
	v3 := current()
	if v3.Version != 3 || !reflect.DeepEqual(v3.Env, map[string]string{"KEEP": "yes"}) {
		t.Fatalf("after env unset: v%d env %v", v3.Version, v3.Env)
	}
	if out := h.ok("-a", "example", "env", "unset", "NOPE"); !strings.Contains(out, "Nothing changed") {
		t.Fatalf("unsetting nothing printed %q", out)
	}
	h.fails("not K=V", "-a", "example", "env", "set", "novalue")

	out := squash(h.ok("-a", "example", "release", "list"))
	if !strings.Contains(out, "\n* v3 "+v3.ID+" 1 web,worker ") || !strings.Contains(out, "\nv1 "+v1.ID+" 1 web,worker ") {
		t.Fatalf("release list:\n%s", out)
	}
	var rels []*controller.Release
	if err := json.Unmarshal([]byte(h.ok("-a", "example", "release", "--json")), &rels); err != nil || len(rels) != 3 {
		t.Fatalf("release --json: %d releases, %v", len(rels), err)
	}
	out = squash(h.ok("-a", "example", "release", "show", "v2"))
	for _, want := range []string{"=== v2\n", "ID: " + v2.ID, "Artifact: flynn/slugrunner:test", "web start web example-web", "A=1", "B=two=2"} {
		if !strings.Contains(out, want) {
			t.Errorf("release show v2 lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Current:") {
		t.Errorf("release show v2 calls it current:\n%s", out)
	}
	if out := h.ok("-a", "example", "release", "show"); !strings.Contains(out, "=== v3") || !strings.Contains(out, "Current:") {
		t.Fatalf("release show (current):\n%s", out)
	}
	h.fails(`no release "v9"`, "-a", "example", "release", "show", "v9")

	if out := h.ok("-a", "example", "rollback"); !strings.HasPrefix(out, "Rolling example back from v3 to v2.\n") || !strings.Contains(out, "\nDeployed release v2 of example in ") {
		t.Fatalf("rollback printed %q", out)
	}
	if current().ID != v2.ID {
		t.Fatal("rollback did not make v2 current")
	}
	h.ok("-a", "example", "rollback")
	if current().ID != v1.ID {
		t.Fatal("a second rollback did not step back to v1")
	}
	h.fails("the first release; nothing to roll back to", "-a", "example", "rollback")
	h.ok("-a", "example", "rollback", v3.ID)
	if current().ID != v3.ID {
		t.Fatal("rollback by id did not deploy v3")
	}
	h.fails("at v3 already", "-a", "example", "rollback", "3")
	deployments, err := h.api.Deployments(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(deployments) != 6 {
		t.Fatalf("%d deployments, want 6 (v1, v2, v3, v2, v1, v3)", len(deployments))
	}
}

// TestEnvBeforeFirstPush: config vars set before an app has a release make
// a release of config alone, which the first push builds with.
func TestEnvBeforeFirstPush(t *testing.T) {
	h := newHarness(t)
	app := h.app("fresh")
	if out := h.ok("-a", "fresh", "env"); out != "" {
		t.Fatalf("env of an app with no release = %q, want nothing", out)
	}
	if out := h.ok("-a", "fresh", "env", "set", "BUILDPACK_URL=https://example.com/bp.tgz"); out != "Set config of fresh (release v1); the next push builds and runs with it.\n" {
		t.Fatalf("env set printed %q", out)
	}
	if out := h.ok("-a", "fresh", "env", "get", "BUILDPACK_URL"); out != "https://example.com/bp.tgz\n" {
		t.Fatalf("env get = %q", out)
	}
	rel, err := h.api.AppRelease(context.Background(), app.ID)
	if err != nil || rel.ArtifactID != "" || len(rel.Processes) != 0 {
		t.Fatalf("current release = %+v, %v; want config alone", rel, err)
	}
	if out := h.ok("-a", "fresh", "release", "show"); !strings.Contains(out, "Artifact:") || !strings.Contains(out, "BUILDPACK_URL=https://example.com/bp.tgz") {
		t.Fatalf("release show:\n%s", out)
	}
	h.fails("nothing to run", "-a", "fresh", "run", "true")
}

// fakeDeployer stands in for the scheduler's deployments of app: the new
// release's web job comes up and the deployment completes, unless the
// release's env has CRASH, when the job crashes (exit status 2, after a
// line of output) and the deployment fails.
func fakeDeployer(t *testing.T, h *harness, app *controller.App) {
	h.runner.ownDeploys.Store(app.ID, true)
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	events, err := h.api.StreamEvents(ctx, controller.EventFilter{AppID: app.ID, ObjectTypes: []string{controller.ObjectTypeDeployment}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	go func() {
		defer close(done)
		n := 0
		for e := range events {
			var d controller.Deployment
			if err := json.Unmarshal(e.Data, &d); err != nil || e.Op != controller.OpCreate || d.Status != controller.DeploymentPending {
				continue
			}
			rel, err := h.api.Release(ctx, d.NewReleaseID)
			if err != nil {
				return
			}
			n++
			j := &controller.Job{ID: fmt.Sprintf("host1-dddddddd-0000-0000-0000-%012d", n), AppID: app.ID, ReleaseID: rel.ID, Type: "web", HostID: "host1", State: controller.JobStateUp}
			u := controller.DeploymentUpdate{Status: controller.DeploymentComplete}
			if rel.Env["CRASH"] != "" {
				exit := 2
				j.State, j.ExitStatus = controller.JobStateCrashed, &exit
				h.runner.setLog(j.ID, host.LogLine{Stream: host.StreamStdout, Time: time.Now(), Data: "booting\n"},
					host.LogLine{Stream: host.StreamStderr, Time: time.Now(), Data: "panic: no config\n"})
				u = controller.DeploymentUpdate{Status: controller.DeploymentFailed, Error: "web process of release " + controller.ReleaseVersion(rel.Version) + " crashed before it was up"}
			}
			if h.api.PutJob(ctx, j) != nil {
				return
			}
			if _, err := h.api.UpdateDeployment(ctx, app.ID, d.ID, u); err != nil {
				return
			}
		}
	}()
}

// env set and rollback wait for their deployment: a good one says it was
// deployed, a failed one shows the crash and its output, exits non-zero
// and leaves the app at its release.
func TestDeployCommandsWait(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	v1 := h.deploy(app, nil)
	ctx := context.Background()
	if err := h.api.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: v1.ID, Processes: map[string]int{"web": 1}}); err != nil {
		t.Fatal(err)
	}
	fakeDeployer(t, h, app)

	res := h.run("-a", "example", "env", "set", "CRASH=1")
	if res.code != 1 || !strings.Contains(res.stderr, "deploy of release v2 failed: web process of release v2 crashed before it was up; example stays at v1") {
		t.Fatalf("env set of a crashing release: exit %d, stderr %q", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, "Deploying release v2 of example…\n") ||
		!strings.Contains(res.stdout, "  web.dddddddd exited with status 2; its last lines:\n    booting\n    panic: no config\n") {
		t.Fatalf("env set did not show the crash:\n%s", res.stdout)
	}
	if cur, err := h.api.AppRelease(ctx, app.ID); err != nil || cur.ID != v1.ID {
		t.Fatalf("after the failed deploy the app is at %+v, %v; want v1", cur, err)
	}

	if out := h.ok("-a", "example", "env", "set", "GOOD=1"); !strings.Contains(out, "Deployed release v3 of example in ") {
		t.Fatalf("env set printed %q", out)
	}
	if out := h.ok("-a", "example", "rollback", "--no-wait"); out != "Rolling example back from v3 to v1.\nCreated release v1 of example; it is deploying.\n" {
		t.Fatalf("rollback --no-wait printed %q", out)
	}
}

// TestEnvChangeKeepsConcurrentChange: an env change made by someone else
// while `flynn env set/unset` runs, after it has read the app, survives:
// the controller applies each change to the release current when it gets
// it. A proxy in front of the controller commits the other change just
// before the command's change reaches the controller.
func TestEnvChangeKeepsConcurrentChange(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		other controller.EnvPatch
		want  map[string]string
	}{
		{"set while another unsets", []string{"env", "set", "A=1"}, controller.EnvPatch{Unset: []string{"LEAKED"}},
			map[string]string{"KEEP": "yes", "A": "1"}},
		{"unset while another sets", []string{"env", "unset", "LEAKED"}, controller.EnvPatch{Set: map[string]string{"B": "2"}},
			map[string]string{"KEEP": "yes", "B": "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			app := h.app("example")
			h.deploy(app, map[string]string{"KEEP": "yes", "LEAKED": "secret"})
			var once sync.Once
			h.viaProxy(func(r *http.Request) {
				if r.Method == http.MethodGet || !strings.HasPrefix(r.URL.Path, "/apps/") {
					return
				}
				once.Do(func() {
					if _, err := h.api.PatchRelease(context.Background(), app.ID, controller.ReleasePatch{Env: &tt.other}); err != nil {
						t.Errorf("the other change: %v", err)
					}
				})
			})
			h.ok(append([]string{"-a", "example"}, tt.args...)...)
			rel, err := h.api.AppRelease(context.Background(), app.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rel.Env, tt.want) {
				t.Fatalf("env after both changes = %v, want %v", rel.Env, tt.want)
			}
		})
	}
}

// viaProxy points the CLI at a proxy of the controller that calls before
// with each request before passing it on.
func (h *harness) viaProxy(before func(*http.Request)) {
	h.t.Helper()
	target, err := url.Parse(h.url)
	if err != nil {
		h.t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		before(pr.In)
		pr.SetURL(target)
	}}
	srv := httptest.NewServer(proxy)
	h.t.Cleanup(srv.Close)
	f := &config.File{}
	if err := f.Add(&config.Cluster{Name: "test", Domain: "example.test", ControllerURL: srv.URL, Key: testKey, GitHost: "127.0.0.1:2222"}); err != nil {
		h.t.Fatal(err)
	}
	h.env.ConfigPath = filepath.Join(h.t.TempDir(), ".flynnrc")
	if err := f.Save(h.env.ConfigPath); err != nil {
		h.t.Fatal(err)
	}
}
