package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReleaseAdd: release add makes the next release with the image, the
// file's process types and env, and follows its deployment.
func TestReleaseAdd(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	app := h.app("example")
	h.fails("the app has no release to take process types from", "-a", "example", "release", "add", "flynn/stack:1")
	first := h.deploy(app, map[string]string{"KEPT": "1"})

	file := filepath.Join(t.TempDir(), "release.json")
	if err := os.WriteFile(file, []byte(`{"processes": {"web": {"cmd": ["python3", "-m", "http.server"], "ports": [{"proto": "http"}]}}, "env": {"ADDED": "2"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := h.ok("-a", "example", "release", "add", "-f", file, "flynn/stack:1")
	if !strings.Contains(out, "v2") {
		t.Errorf("release add printed %q", out)
	}
	rel, err := h.api.AppRelease(ctx, app.ID)
	if err != nil || rel.ID == first.ID {
		t.Fatalf("current release %+v, %v", rel, err)
	}
	art, err := h.api.Artifact(ctx, rel.ArtifactID)
	if err != nil || art.URI != "flynn/stack:1" {
		t.Fatalf("artifact %+v, %v", art, err)
	}
	if got := rel.Processes["web"].Cmd; !slices.Equal(got, []string{"python3", "-m", "http.server"}) || len(rel.Processes) != 1 {
		t.Errorf("processes %+v", rel.Processes)
	}
	if rel.Env["KEPT"] != "1" || rel.Env["ADDED"] != "2" {
		t.Errorf("env %v", rel.Env)
	}

	// Without -f the process types stay.
	h.ok("-a", "example", "release", "add", "flynn/stack:2")
	if rel, err = h.api.AppRelease(ctx, app.ID); err != nil || rel.Processes["web"].Cmd[0] != "python3" {
		t.Fatalf("release without -f: %+v, %v", rel, err)
	}

	h.fails("is a URL", "-a", "example", "release", "add", "http://example.com/image.tar")
	h.fails("want one IMAGE", "-a", "example", "release", "add")
	if err := os.WriteFile(file, []byte(`{"proceses": {}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	h.fails(`unknown field "proceses"`, "-a", "example", "release", "add", "-f", file, "flynn/stack:3")
}
