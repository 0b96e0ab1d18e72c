package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// TestBuildEnvAPI: anyone reads the cluster's build settings, only the
// cluster key changes them, the store's refusals come back as validation
// errors on their fields, and the event of a change keeps no value.
func TestBuildEnvAPI(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	person, _ := h.person(t, "alice")

	fresh, err := person.BuildEnv(ctx)
	if err != nil {
		t.Fatalf("a person reads the build env: %v", err)
	}
	if len(fresh.Env) != 0 || fresh.CACerts != "" || !fresh.UpdatedAt.IsZero() {
		t.Fatalf("fresh build env = %+v, want empty", fresh)
	}
	ca := selfSignedCert(t, "mirror.test")
	patch := controller.BuildEnvPatch{
		Env:     &controller.EnvPatch{Set: map[string]string{"GOPROXY": "https://user:hush@proxy.test"}},
		CACerts: &ca.Cert,
	}
	err = second(person.PatchBuildEnv(ctx, patch))
	wantCode(t, err, httpjson.CodeForbidden, "")
	if !strings.Contains(err.Error(), "cluster key") {
		t.Errorf("refusal %q does not say what is needed", err)
	}
	if status, _ := rawGet(t, h.url+"/cluster/build-env", ""); status != http.StatusUnauthorized {
		t.Errorf("GET without a key: status %d, want 401", status)
	}

	got, err := h.client.PatchBuildEnv(ctx, patch)
	if err != nil {
		t.Fatal(err)
	}
	if got.Env["GOPROXY"] != "https://user:hush@proxy.test" || got.CACerts != ca.Cert || got.UpdatedAt.IsZero() {
		t.Fatalf("patched = %+v, want the variable, the certificate and a time", got)
	}
	read, err := person.BuildEnv(ctx)
	if err != nil || read.Env["GOPROXY"] != got.Env["GOPROXY"] || read.CACerts != got.CACerts || !read.UpdatedAt.Equal(got.UpdatedAt) {
		t.Fatalf("a person reads %+v, %v; want %+v", read, err, got)
	}

	refusals := []struct {
		name  string
		patch controller.BuildEnvPatch
		field string
	}{
		{"bad name", controller.BuildEnvPatch{Env: &controller.EnvPatch{Set: map[string]string{"my-var": "x"}}}, "env.set"},
		{"set and unset", controller.BuildEnvPatch{Env: &controller.EnvPatch{Set: map[string]string{"A": "x"}, Unset: []string{"A"}}}, "env.unset.0"},
		{"the certificates' variable", controller.BuildEnvPatch{Env: &controller.EnvPatch{Set: map[string]string{controller.CACertsEnv: ca.Cert}}}, "env.set"},
		{"a key for a certificate", controller.BuildEnvPatch{CACerts: &ca.Key}, "ca_certs"},
		{"not PEM", controller.BuildEnvPatch{CACerts: ptr("hello")}, "ca_certs"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, second(h.client.PatchBuildEnv(ctx, tt.patch)), httpjson.CodeValidation, tt.field)
		})
	}
	wantCode(t, rawRequest(t, h, "PATCH", "/cluster/build-env", "application/json", []byte(`{"certs":"x"}`), nil), httpjson.CodeValidation, "")

	events, err := h.store.Events.List(ctx, postgres.EventQuery{ObjectTypes: []string{controller.ObjectTypeBuildEnv}})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("%d build env events, want 1 (refusals write none)", len(events))
	}
	var data controller.BuildEnv
	if err := json.Unmarshal(events[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.Env["GOPROXY"] != controller.RedactedValue {
		t.Errorf("event data env = %v, want GOPROXY redacted", data.Env)
	}
}

func ptr[T any](v T) *T { return &v }

// TestBuildEnvReachesOneOffJobs: a one-off job of an app gets the cluster's
// build settings under its own env; a system app's gets nothing.
func TestBuildEnvReachesOneOffJobs(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	ca := selfSignedCert(t, "mirror.test").Cert
	if _, err := h.client.PatchBuildEnv(ctx, controller.BuildEnvPatch{
		Env:     &controller.EnvPatch{Set: map[string]string{"GOPROXY": "https://proxy.test", "A": "cluster", "B": "cluster"}},
		CACerts: &ca,
	}); err != nil {
		t.Fatal(err)
	}
	run := func(app *controller.App) map[string]string {
		t.Helper()
		rel := h.release(t, app, map[string]string{"A": "release"})
		if _, err := h.client.RunJob(ctx, app.ID, &controller.NewJob{ReleaseID: rel.ID, Args: []string{"build"}, Env: map[string]string{"B": "request"}}); err != nil {
			t.Fatalf("run a job of %s: %v", app.Name, err)
		}
		ran := h.runner.ran()
		return ran[len(ran)-1].HostJob("host1").Config.Env
	}

	env := run(h.app(t, "builds"))
	for k, want := range map[string]string{"GOPROXY": "https://proxy.test", "A": "release", "B": "request", controller.CACertsEnv: ca} {
		if env[k] != want {
			t.Errorf("app job: env[%s] = %q, want %q", k, env[k], want)
		}
	}
	env = run(h.systemApp(t, "builder"))
	for _, k := range []string{"GOPROXY", controller.CACertsEnv} {
		if v, ok := env[k]; ok {
			t.Errorf("system app job: env[%s] = %q, want it unset", k, v)
		}
	}
	if env["B"] != "request" {
		t.Errorf("system app job: env[B] = %q, want its own", env["B"])
	}
}
