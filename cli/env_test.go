package cli

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
)

func TestEnvReleasesRollback(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	v1 := h.deploy(app, map[string]string{"KEEP": "yes"})
	ctx := context.Background()

	if out := h.ok("-a", "example", "env", "set", "A=1", "B=two=2"); out != "Created release v2 of example and deployed it.\n" {
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

	if out := h.ok("-a", "example", "rollback"); out != "Rolled example back from v3 to v2.\n" {
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
