package server

import (
	"net/http"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func TestReleases(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client
	a, b := h.app(t, "app-a"), h.app(t, "app-b")

	art := h.artifact(t)
	if got, err := c.Artifact(ctx, art.ID); err != nil || got.URI != art.URI {
		t.Fatalf("Artifact = %+v, %v; want %+v", got, err, art)
	}
	a1, a2 := h.release(t, a, nil), h.release(t, a, map[string]string{"K": "v"})
	b1 := h.release(t, b, nil)
	for _, tt := range []struct {
		rel  *controller.Release
		want int
	}{{a1, 1}, {a2, 2}, {b1, 1}} {
		if tt.rel.Version != tt.want {
			t.Errorf("release %s of %s: version %d, want %d", tt.rel.ID, tt.rel.AppID, tt.rel.Version, tt.want)
		}
	}
	got, err := c.Release(ctx, a2.ID)
	if err != nil || got.Env["K"] != "v" || got.Processes["web"].Service != "app-a-web" || got.Processes["worker"].Resources.Memory != 256<<20 {
		t.Fatalf("Release = %+v, %v", got, err)
	}
	list, err := c.AppReleases(ctx, "app-a")
	if err != nil || len(list) != 2 || list[0].ID != a1.ID || list[1].ID != a2.ID {
		t.Fatalf("AppReleases = %v, %v; want v1, v2", list, err)
	}
	all, err := c.Releases(ctx)
	if err != nil || len(all) != 3 {
		t.Fatalf("Releases = %d, %v; want 3", len(all), err)
	}

	// Concurrent releases of one app still get distinct versions.
	errc := make(chan error, 5)
	for i := 0; i < 5; i++ {
		go func() {
			errc <- c.CreateRelease(ctx, &controller.Release{AppID: b.ID, ArtifactID: art.ID})
		}()
	}
	for i := 0; i < 5; i++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	bs, _ := c.AppReleases(ctx, b.ID)
	versions := map[int]bool{}
	for _, r := range bs {
		versions[r.Version] = true
	}
	if len(bs) != 6 || len(versions) != 6 || !versions[6] {
		t.Fatalf("app b has %d releases with versions %v, want 1..6", len(bs), versions)
	}

	missing := "5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c"
	errs := []struct {
		name  string
		err   error
		code  httpjson.Code
		field string
	}{
		{"unknown artifact", c.CreateRelease(ctx, &controller.Release{AppID: a.ID, ArtifactID: missing}), httpjson.CodeValidation, "artifact"},
		{"processes without an artifact", c.CreateRelease(ctx, &controller.Release{AppID: a.ID,
			Processes: map[string]controller.ProcessType{"web": {Cmd: []string{"start", "web"}}}}), httpjson.CodeValidation, "artifact"},
		{"missing app", c.CreateRelease(ctx, &controller.Release{AppID: "nope", ArtifactID: art.ID}), httpjson.CodeNotFound, ""},
		{"bad process name", c.CreateRelease(ctx, &controller.Release{AppID: a.ID, ArtifactID: art.ID,
			Processes: map[string]controller.ProcessType{"bad name!": {}}}), httpjson.CodeValidation, "processes"},
		{"bad port", c.CreateRelease(ctx, &controller.Release{AppID: a.ID, ArtifactID: art.ID,
			Processes: map[string]controller.ProcessType{"web": {Ports: []controller.Port{{Port: 70000, Proto: "tcp"}}}}}), httpjson.CodeValidation, "processes.web.ports.0.port"},
		{"bad artifact type", c.CreateArtifact(ctx, &controller.Artifact{Type: "tarball", URI: "x"}), httpjson.CodeValidation, "type"},
		{"artifact without uri", c.CreateArtifact(ctx, &controller.Artifact{Type: "docker"}), httpjson.CodeValidation, "uri"},
		{"missing release", second(c.Release(ctx, missing)), httpjson.CodeNotFound, ""},
		{"malformed release id", second(c.Release(ctx, "v1")), httpjson.CodeNotFound, ""},
		{"missing artifact", second(c.Artifact(ctx, missing)), httpjson.CodeNotFound, ""},
		{"no current release", second(c.AppRelease(ctx, a.ID)), httpjson.CodeNotFound, ""},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.err, tt.code, tt.field) })
	}

	// POST /releases names the app in the body; a missing one is a bad body.
	var viaRoot controller.Release
	if err := postJSON(t, h, "/releases", map[string]any{"app": "app-a", "artifact": art.ID}, &viaRoot); err != nil || viaRoot.Version != 3 {
		t.Fatalf("POST /releases = %+v, %v; want v3 of app-a", viaRoot, err)
	}
	wantCode(t, postJSON(t, h, "/releases", map[string]any{"app": "nope", "artifact": art.ID}, nil), httpjson.CodeValidation, "app")
	wantCode(t, postJSON(t, h, "/releases", map[string]any{"artifact": art.ID}, nil), httpjson.CodeValidation, "app")

	// Releases are immutable: there is nothing to PUT or DELETE.
	for _, method := range []string{http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequestWithContext(ctx, method, h.url+"/releases/"+a1.ID, nil)
		req.SetBasicAuth("", testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s release: status %d, want 405", method, resp.StatusCode)
		}
	}
}

// TestConfigOnlyRelease: an app's config vars can be set before its first
// push, as a release with env and no artifact; it deploys at once (nothing
// to run) and refuses one-off jobs clearly.
func TestConfigOnlyRelease(t *testing.T) {
	h := newHarness(t)
	c := h.client
	ctx := t.Context()
	a := &controller.App{Name: "configured"}
	if err := c.CreateApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	rel := &controller.Release{AppID: a.ID, Env: map[string]string{"BUILDPACK_URL": "https://example.com/bp.tgz"}}
	if err := c.CreateRelease(ctx, rel); err != nil {
		t.Fatal(err)
	}
	if rel.Version != 1 || rel.ArtifactID != "" {
		t.Fatalf("config release = v%d artifact %q, want v1 and none", rel.Version, rel.ArtifactID)
	}
	d, err := c.Deploy(ctx, a.ID, rel.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != controller.DeploymentComplete {
		t.Errorf("deployment of a config release: %s, want complete (nothing runs)", d.Status)
	}
	got, err := c.AppRelease(ctx, a.ID)
	if err != nil || got.Env["BUILDPACK_URL"] == "" {
		t.Fatalf("current release = %+v, %v", got, err)
	}
	if _, err := c.RunJob(ctx, a.ID, &controller.NewJob{Args: []string{"true"}}); !httpjson.IsCode(err, httpjson.CodeValidation) {
		t.Errorf("one-off job on a config release: %v, want a validation_error", err)
	}

	// The first push after it is the app's first deploy: web=1.
	art := h.artifact(t)
	built := &controller.Release{AppID: a.ID, ArtifactID: art.ID, Env: got.Env,
		Processes: map[string]controller.ProcessType{"web": {Cmd: []string{"start", "web"}}}}
	if err := c.CreateRelease(ctx, built); err != nil {
		t.Fatal(err)
	}
	d, err = c.Deploy(ctx, a.ID, built.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != controller.DeploymentPending || d.Processes["web"] != 1 {
		t.Errorf("first deploy after config: %s with %v, want pending with web=1", d.Status, d.Processes)
	}
}
