package gitreceive_test

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/syncbuf"
)

// TestEnvChangeDuringPushKept: `flynn env unset LEAKED` (and a set) made
// while a push builds stay in the release the push makes; the push does
// not put back the env it read before its build.
func TestEnvChangeDuringPushKept(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("example")
	ctx := t.Context()
	w := h.newWorkdir("example")
	w.commit("first", map[string]string{"Procfile": "web: ./web\n"})
	if out, _, err := w.push("main"); err != nil {
		t.Fatalf("first push: %v\n%s", err, out)
	}
	if _, err := h.client.PatchRelease(ctx, app.ID, controller.ReleasePatch{Env: &controller.EnvPatch{Set: map[string]string{"LEAKED": "secret", "KEEP": "yes"}}}); err != nil {
		t.Fatal(err)
	}

	w.commit("second", map[string]string{"gate.txt": "wait", "Procfile": "web: ./web\nworker: ./worker\n"})
	var out syncbuf.Buffer
	push := w.pushCmd(&out, "main")
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the push's build to reach the gate", func() bool { return strings.Contains(out.String(), "At the gate") })
	if spec := h.runner.lastSpec(); spec.Env["LEAKED"] != "secret" {
		t.Fatalf("the build did not start with the app's env: %v", spec.Env)
	}
	changed, err := h.client.PatchRelease(ctx, app.ID, controller.ReleasePatch{Env: &controller.EnvPatch{Set: map[string]string{"ADDED": "1"}, Unset: []string{"LEAKED"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.runner.gateDir, "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := push.Wait(); err != nil {
		t.Fatalf("push: %v\n%s", err, out.String())
	}

	rel, err := h.client.AppRelease(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != changed.Release.Version+1 || len(rel.Processes) != 2 || rel.Meta["git"] != "true" {
		t.Fatalf("after the push: release v%d with processes %v meta %v; want v%d, the push's", rel.Version, rel.Processes, rel.Meta, changed.Release.Version+1)
	}
	env := maps.Clone(rel.Env)
	if env["SLUG_URL"] == "" || env["SLUG_URL"] == changed.Release.Env["SLUG_URL"] {
		t.Errorf("SLUG_URL = %q, want the push's new slug", env["SLUG_URL"])
	}
	delete(env, "SLUG_URL")
	if want := map[string]string{"KEEP": "yes", "ADDED": "1"}; !maps.Equal(env, want) {
		t.Fatalf("env after the push = %v, want %v plus SLUG_URL: a change made during the build was undone", env, want)
	}
}
