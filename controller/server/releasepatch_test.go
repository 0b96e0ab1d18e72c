package server

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// envPatch is a ReleasePatch of the env alone.
func envPatch(set map[string]string, unset ...string) controller.ReleasePatch {
	return controller.ReleasePatch{Env: &controller.EnvPatch{Set: set, Unset: unset}}
}

// TestPatchRelease: PATCH /apps/:id/release makes a new release from the
// current one, changed as asked, and deploys it; a patch that changes
// nothing makes nothing.
func TestPatchRelease(t *testing.T) {
	h := newHarness(t)
	c := h.client
	ctx := t.Context()
	app := h.app(t, "example")
	v1 := h.release(t, app, map[string]string{"KEEP": "yes", "GONE": "soon"})
	if _, err := c.SetAppRelease(ctx, app.ID, v1.ID); err != nil {
		t.Fatal(err)
	}

	got, err := c.PatchRelease(ctx, app.Name, envPatch(map[string]string{"A": "1", "KEEP": "still"}, "GONE"))
	if err != nil {
		t.Fatal(err)
	}
	v2, d := got.Release, got.Deployment
	if want := map[string]string{"KEEP": "still", "A": "1"}; v2 == nil || v2.Version != 2 || !reflect.DeepEqual(v2.Env, want) {
		t.Fatalf("patched release = %+v, want v2 with env %v", v2, want)
	}
	if v2.ArtifactID != v1.ArtifactID || !reflect.DeepEqual(v2.Processes, v1.Processes) {
		t.Errorf("an env patch changed more than the env: %+v", v2)
	}
	if d == nil || d.OldReleaseID != v1.ID || d.NewReleaseID != v2.ID {
		t.Fatalf("deployment = %+v, want v1 → v2", d)
	}
	if cur, err := c.App(ctx, app.ID); err != nil || cur.ReleaseID != v2.ID {
		t.Fatalf("app's release after the patch = %+v, %v; want v2", cur, err)
	}

	// Nothing to change: 200, the current release, no deployment.
	status, raw := patchStatus(t, h, app.Name, `{"env":{"unset":["NOPE"],"set":{"A":"1"}}}`)
	if status != 200 || raw.Deployment != nil || raw.Release == nil || raw.Release.ID != v2.ID {
		t.Fatalf("no-op patch: status %d, %+v; want 200 with v2 and no deployment", status, raw)
	}

	// A push: a new artifact and process types, the env kept and SLUG_URL
	// set.
	art := h.artifact(t)
	procs := map[string]controller.ProcessType{"web": {Cmd: []string{"start", "web"}}}
	got, err = c.PatchRelease(ctx, app.ID, controller.ReleasePatch{ArtifactID: art.ID, Processes: procs,
		Meta: map[string]string{"git": "true"}, Env: &controller.EnvPatch{Set: map[string]string{"SLUG_URL": "http://blob/slug.tgz"}}})
	if err != nil {
		t.Fatal(err)
	}
	if v3 := got.Release; v3.Version != 3 || v3.ArtifactID != art.ID || !reflect.DeepEqual(v3.Processes, procs) ||
		!reflect.DeepEqual(v3.Env, map[string]string{"KEEP": "still", "A": "1", "SLUG_URL": "http://blob/slug.tgz"}) || v3.Meta["git"] != "true" {
		t.Fatalf("pushed release = %+v", v3)
	}

	// An app with no release gets config alone, deployed at once.
	fresh := h.app(t, "fresh")
	if got, err := c.PatchRelease(ctx, fresh.ID, envPatch(nil, "NOPE")); err != nil || got.Release != nil || got.Deployment != nil {
		t.Fatalf("no-op patch of an app with no release = %+v, %v; want nothing", got, err)
	}
	got, err = c.PatchRelease(ctx, fresh.ID, envPatch(map[string]string{"BUILDPACK_URL": "https://example.com/bp.tgz"}))
	if err != nil || got.Release.ArtifactID != "" || got.Deployment.Status != controller.DeploymentComplete {
		t.Fatalf("config patch of an app with no release = %+v, %v; want a config release, deployed", got, err)
	}

	for _, tt := range []struct {
		name  string
		app   string
		patch controller.ReleasePatch
		code  httpjson.Code
		field string
	}{
		{"invalid name", app.ID, envPatch(map[string]string{"my-var": "x"}), httpjson.CodeValidation, "env.set"},
		{"name starting with a digit", app.ID, envPatch(map[string]string{"1A": "x"}), httpjson.CodeValidation, "env.set"},
		{"set and unset", app.ID, envPatch(map[string]string{"A": "2"}, "B", "A"), httpjson.CodeValidation, "env.unset.1"},
		{"missing artifact", app.ID, controller.ReleasePatch{ArtifactID: "5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c"}, httpjson.CodeValidation, "artifact"},
		{"processes without an artifact", fresh.ID, controller.ReleasePatch{Processes: procs}, httpjson.CodeValidation, "artifact"},
		{"host network", app.ID, controller.ReleasePatch{Processes: map[string]controller.ProcessType{"web": {HostNetwork: true}}}, httpjson.CodeValidation, "processes.web.host_network"},
		{"missing app", "nope", envPatch(map[string]string{"A": "1"}), httpjson.CodeNotFound, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.PatchRelease(ctx, tt.app, tt.patch)
			wantCode(t, err, tt.code, tt.field)
		})
	}
	if cur, _ := c.AppRelease(ctx, app.ID); cur.Version != 3 {
		t.Fatalf("refused patches changed the release: now v%d", cur.Version)
	}
}

// TestPatchReleaseNoDeploy: a patch with no_deploy makes the new release
// (always, even one equal to the current) and leaves the app at its
// current release until the caller deploys the new one, as a push does
// after its release command.
func TestPatchReleaseNoDeploy(t *testing.T) {
	h := newHarness(t)
	c := h.client
	ctx := t.Context()
	app := h.app(t, "example")
	v1 := h.release(t, app, map[string]string{"KEEP": "yes"})
	if _, err := c.SetAppRelease(ctx, app.ID, v1.ID); err != nil {
		t.Fatal(err)
	}
	before, err := c.Deployments(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		body    string
		version int
		env     map[string]string
	}{
		{"env set", `{"no_deploy":true,"env":{"set":{"A":"1"}}}`, 2, map[string]string{"KEEP": "yes", "A": "1"}},
		{"nothing changed", `{"no_deploy":true}`, 3, map[string]string{"KEEP": "yes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, got := patchStatus(t, h, app.Name, tt.body)
			if status != http.StatusCreated || got.Deployment != nil {
				t.Fatalf("status %d, deployment %+v; want 201 and none", status, got.Deployment)
			}
			if rel := got.Release; rel == nil || rel.Version != tt.version || !maps.Equal(rel.Env, tt.env) || rel.ArtifactID != v1.ArtifactID {
				t.Fatalf("release = %+v, want v%d with env %v from v1", rel, tt.version, tt.env)
			}
			if cur, err := c.AppRelease(ctx, app.ID); err != nil || cur.ID != v1.ID {
				t.Fatalf("current release after a no_deploy patch = %+v, %v; want v1", cur, err)
			}
		})
	}
	if after, err := c.Deployments(ctx, app.ID); err != nil || len(after) != len(before) {
		t.Fatalf("%d deployments after no_deploy patches, want %d (%v)", len(after), len(before), err)
	}

	// The caller deploys the release when it is ready to.
	rels, err := c.AppReleases(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	var v2 *controller.Release
	for _, r := range rels {
		if r.Version == 2 {
			v2 = r
		}
	}
	if v2 == nil {
		t.Fatalf("no v2 in %v", rels)
	}
	d, err := c.Deploy(ctx, app.ID, v2.ID)
	if err != nil || d.OldReleaseID != v1.ID || d.NewReleaseID != v2.ID {
		t.Fatalf("deploy of the no_deploy release = %+v, %v; want v1 → v2", d, err)
	}
}

// patchStatus sends a raw PATCH and returns the status and the answer.
func patchStatus(t *testing.T, h *harness, app, body string) (int, controller.PatchedRelease) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, h.url+"/apps/"+app+"/release", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("", testKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out controller.PatchedRelease
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("PATCH answer: %v", err)
	}
	return resp.StatusCode, out
}

// TestPatchReleaseLegacyName: a release stored before the one rule may
// hold a name no job can have. A patch that would carry it into a new
// release is refused with what to do, and unsetting it works.
func TestPatchReleaseLegacyName(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	app := h.app(t, "legacy")
	// Through the store: the API refuses the name.
	old := &controller.Release{AppID: app.ID, Env: map[string]string{"my-var": "x", "OK": "1"}}
	if err := h.store.Releases.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.store.Deployments.Deploy(ctx, app.ID, old.ID); err != nil {
		t.Fatal(err)
	}
	_, err := h.client.PatchRelease(ctx, app.ID, envPatch(map[string]string{"B": "2"}))
	wantCode(t, err, httpjson.CodeValidation, "env")
	got, err := h.client.PatchRelease(ctx, app.ID, envPatch(map[string]string{"B": "2"}, "my-var"))
	if err != nil || !reflect.DeepEqual(got.Release.Env, map[string]string{"OK": "1", "B": "2"}) {
		t.Fatalf("unsetting the bad name = %+v, %v", got, err)
	}
}

// TestEnvNamesRefused: every way into a job's env takes only names
// flynn-host accepts.
func TestEnvNamesRefused(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	app := h.app(t, "example")
	rel := h.release(t, app, nil)
	art := h.artifact(t)
	for _, tt := range []struct {
		name  string
		err   error
		field string
	}{
		{"release env", h.client.CreateRelease(ctx, &controller.Release{AppID: app.ID, Env: map[string]string{"my-var": "x"}}), "env"},
		{"process env", h.client.CreateRelease(ctx, &controller.Release{AppID: app.ID, ArtifactID: art.ID,
			Processes: map[string]controller.ProcessType{"web": {Env: map[string]string{"a.b": "x"}}}}), "processes.web.env"},
		{"one-off job env", second(h.client.RunJob(ctx, app.ID, &controller.NewJob{ReleaseID: rel.ID, Args: []string{"true"}, Env: map[string]string{"X=Y": "1"}})), "env"},
	} {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.err, httpjson.CodeValidation, tt.field) })
	}
	for _, name := range []string{"PORT", "DATABASE_URL", "BUILDPACK_URL", "FLYNN_CONTROLLER_KEY", "http_proxy", "_X"} {
		if err := h.client.CreateRelease(ctx, &controller.Release{AppID: app.ID, Env: map[string]string{name: "x"}}); err != nil {
			t.Errorf("release with %s: %v", name, err)
		}
	}
}

// TestConcurrentEnvChanges: env changes and a push's release made at the
// same time all survive; none undoes another. (A client that reads the
// release, changes it and creates the next one loses all but one.)
func TestConcurrentEnvChanges(t *testing.T) {
	h := newHarness(t)
	c := h.client
	ctx := t.Context()
	app := h.app(t, "busy")
	v1 := h.release(t, app, map[string]string{"LEAKED": "secret", "KEEP": "yes"})
	if _, err := c.SetAppRelease(ctx, app.ID, v1.ID); err != nil {
		t.Fatal(err)
	}
	build := h.artifact(t)
	const setters = 12
	patches := []controller.ReleasePatch{
		envPatch(nil, "LEAKED"),
		{ArtifactID: build.ID, Processes: v1.Processes, Env: &controller.EnvPatch{Set: map[string]string{"SLUG_URL": "http://blob/new.tgz"}}},
	}
	want := map[string]string{"KEEP": "yes", "SLUG_URL": "http://blob/new.tgz"}
	for i := range setters {
		k := fmt.Sprintf("VAR_%d", i)
		patches = append(patches, envPatch(map[string]string{k: "1"}))
		want[k] = "1"
	}
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, len(patches))
	)
	for i, p := range patches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = c.PatchRelease(context.WithoutCancel(ctx), app.ID, p)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("patch %d: %v", i, err)
		}
	}
	cur, err := c.AppRelease(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(cur.Env, want) || cur.ArtifactID != build.ID {
		t.Fatalf("after %d concurrent changes: artifact %s env %v\nwant artifact %s env %v", len(patches), cur.ArtifactID, cur.Env, build.ID, want)
	}
	if cur.Version != len(patches)+1 {
		t.Errorf("current release is v%d, want v%d (one per change)", cur.Version, len(patches)+1)
	}
	// The deployments chain: each starts from the release the one before
	// made, from v1 to the current release.
	ds, err := c.Deployments(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	from := map[string]*controller.Deployment{}
	for _, d := range ds {
		if d.OldReleaseID != "" {
			from[d.OldReleaseID] = d
		}
	}
	at, steps := v1.ID, 0
	for d := from[at]; d != nil; d = from[at] {
		at, steps = d.NewReleaseID, steps+1
	}
	if at != cur.ID || steps != len(patches) {
		t.Errorf("the deployments from v1 lead to %s in %d steps, want the current release %s in %d", at, steps, cur.ID, len(patches))
	}
}

// TestProviderEnvNamesRefused: a provider's env reaches the apps' jobs, so
// a name no job may have is refused before any app gets it.
func TestProviderEnvNamesRefused(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	prov := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, controller.ProvisionedResource{ID: "db-1", Env: map[string]string{"DATABASE-URL": "postgres://db"}})
	}))
	t.Cleanup(prov.Close)
	if err := h.client.CreateProvider(ctx, &controller.Provider{Name: "sloppy", URL: prov.URL}); err != nil {
		t.Fatal(err)
	}
	app := h.app(t, "withdb")
	v1 := h.release(t, app, nil)
	if _, err := h.client.SetAppRelease(ctx, app.ID, v1.ID); err != nil {
		t.Fatal(err)
	}
	_, err := h.client.ProvisionResource(ctx, "sloppy", &controller.ResourceRequest{Apps: []string{app.Name}})
	wantCode(t, err, httpjson.CodeServiceUnavailable, "")
	if cur, err := h.client.AppRelease(ctx, app.ID); err != nil || cur.ID != v1.ID {
		t.Fatalf("release after the refused resource = %+v, %v; want v1", cur, err)
	}
}
