package gitreceive_test

import (
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/gitreceive"
)

// TestPushChoosesStack: a push builds on the app's stack, else on the
// default unless its version files ask for what only another stack has;
// the build sees the stack as STACK and the release runs on the stack's
// slugrunner.
func TestPushChoosesStack(t *testing.T) {
	const trixieBuilder, trixieRunner = "flynn/slugbuilder-trixie:test", "flynn/slugrunner-trixie:test"
	h := newHarnessWith(t, harnessOptions{config: func(c *gitreceive.Config) {
		c.Stacks = map[string]gitreceive.StackImages{"flynn-trixie": {Slugbuilder: trixieBuilder, Slugrunner: trixieRunner}}
	}})
	ctx := t.Context()
	app := h.createApp("example")
	w := h.newWorkdir("example")

	tests := []struct {
		name     string
		files    map[string]string
		appStack string
		builder  string
		runner   string
		stack    string
		says     string
	}{
		{"nothing asked", map[string]string{}, "", slugbuilderImage, slugrunnerImage, "flynn-bookworm", ""},
		{"python the default has", map[string]string{".python-version": "3.11\n"}, "", slugbuilderImage, slugrunnerImage, "flynn-bookworm", ""},
		{"newer python", map[string]string{".python-version": "3.13\n"}, "", trixieBuilder, trixieRunner, "flynn-trixie",
			"Python 3.13 (.python-version): building on stack flynn-trixie (Debian 13)"},
		{"runtime.txt", map[string]string{"runtime.txt": "python-3.13.2\n"}, "", trixieBuilder, trixieRunner, "flynn-trixie", "(runtime.txt)"},
		{"newer node", map[string]string{"package.json": `{"engines": {"node": ">=20"}}`}, "", trixieBuilder, trixieRunner, "flynn-trixie",
			"Node.js >=20 (package.json engines.node)"},
		{"a version no stack has", map[string]string{".python-version": "3.14\n"}, "", slugbuilderImage, slugrunnerImage, "flynn-bookworm",
			"Python 3.14 (.python-version): no built stack has it (flynn-bookworm: Python 3.11; flynn-trixie: Python 3.13)"},
		{"the app's own stack", map[string]string{}, "flynn-trixie", trixieBuilder, trixieRunner, "flynn-trixie", ""},
		{"the app's own stack lacks a version", map[string]string{".python-version": "3.13\n"}, "flynn-bookworm", slugbuilderImage, slugrunnerImage, "flynn-bookworm",
			"Python 3.13 (.python-version): the app's stack flynn-bookworm lacks it; flynn-trixie has it (`flynn stack set flynn-trixie`)"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stack := tt.appStack
			if _, err := h.client.UpdateApp(ctx, app.ID, controller.AppUpdate{Stack: &stack}); err != nil {
				t.Fatal(err)
			}
			files := map[string]string{"Procfile": "web: ./web\n", "n": strings.Repeat("x", i+1)}
			for _, name := range []string{".python-version", "runtime.txt", "package.json"} {
				files[name] = "" // a file of an earlier case is emptied: it asks for nothing
			}
			for k, v := range tt.files {
				files[k] = v
			}
			w.commit(tt.name, files)
			out := w.pushOK(t, "main")
			if tt.says != "" && !strings.Contains(out, tt.says) {
				t.Errorf("push output lacks %q:\n%s", tt.says, out)
			}
			if tt.says == "" && strings.Contains(out, "building on stack") {
				t.Errorf("push output names a stack switch:\n%s", out)
			}
			var build = h.runner.lastSpec()
			if build.Artifact.URI != tt.builder || build.Env["STACK"] != tt.stack {
				t.Errorf("built with %s, STACK=%q; want %s, %q", build.Artifact.URI, build.Env["STACK"], tt.builder, tt.stack)
			}
			rel, err := h.client.AppRelease(ctx, app.ID)
			if err != nil {
				t.Fatal(err)
			}
			art, err := h.client.Artifact(ctx, rel.ArtifactID)
			if err != nil || art.URI != tt.runner {
				t.Errorf("release runs %v (%v), want %s", art, err, tt.runner)
			}
		})
	}

	// A stack the cluster does not build fails the push at once.
	h2 := newHarness(t)
	other := h2.createApp("other")
	stack := "flynn-trixie"
	if _, err := h2.client.UpdateApp(ctx, other.ID, controller.AppUpdate{Stack: &stack}); err != nil {
		t.Fatal(err)
	}
	w2 := h2.newWorkdir("other")
	w2.commit("first", map[string]string{"Procfile": "web: ./web\n"})
	if out, _, err := w2.push("main"); err == nil || !strings.Contains(out, "other's stack flynn-trixie is not built on this cluster (built: flynn-bookworm)") {
		t.Fatalf("push on an unbuilt stack: %v\n%s", err, out)
	}
	// A version only an unbuilt stack has builds on the default, which
	// says so (its buildpack then fails or not).
	h2.createApp("third")
	w3 := h2.newWorkdir("third")
	w3.commit("first", map[string]string{"Procfile": "web: ./web\n", ".python-version": "3.13\n"})
	if out := w3.pushOK(t, "main"); !strings.Contains(out, "Python 3.13 (.python-version): no built stack has it (flynn-bookworm: Python 3.11; flynn-trixie: not built on this cluster)") {
		t.Errorf("push asking for an unbuilt stack's version:\n%s", out)
	}
}
