package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// gitInit makes the harness's working directory a git repository.
func gitInit(t *testing.T, h *harness) {
	t.Helper()
	git := testdeps.LookPath(t, "git")
	h.env.Git = git
	if out, err := exec.Command(git, "-C", h.env.Dir, "init", "-q").CombinedOutput(); err != nil {
		t.Fatalf("git init: %v: %s", err, out)
	}
}

func gitRemote(t *testing.T, h *harness, name string) string {
	t.Helper()
	out, _ := exec.Command(h.env.Git, "-C", h.env.Dir, "config", "--get", "remote."+name+".url").Output()
	return strings.TrimSpace(string(out))
}

func TestAppLifecycle(t *testing.T) {
	h := newHarness(t)
	gitInit(t, h)

	out := h.ok("create", "example")
	if !strings.Contains(out, "Created example") || !strings.Contains(out, "Added git remote flynn: ssh://git@127.0.0.1:2222/example.git") {
		t.Fatalf("create printed %q", out)
	}
	if got := gitRemote(t, h, "flynn"); got != "ssh://git@127.0.0.1:2222/example.git" {
		t.Fatalf("git remote flynn = %q", got)
	}
	h.fails("name", "create", "Not_A_Valid_Name")
	h.ok("create", "other")
	res := h.run("create", "third")
	if res.code != 0 || !strings.Contains(res.stderr, `git remote "flynn" exists already`) {
		t.Fatalf("create with an existing remote: %+v, want success and a warning", res)
	}

	out = h.ok("apps")
	for _, name := range []string{"example", "other", "third"} {
		if !strings.Contains(out, "\n"+name+" ") {
			t.Errorf("apps lacks %s:\n%s", name, out)
		}
	}
	var apps []*controller.App
	if err := json.Unmarshal([]byte(h.ok("apps", "--json")), &apps); err != nil || len(apps) != 3 {
		t.Fatalf("apps --json: %d apps, %v", len(apps), err)
	}

	// info finds the app through the git remote.
	out = squash(h.ok("info"))
	for _, want := range []string{"=== example", "(none yet: git push to deploy)", "Git URL: ssh://git@127.0.0.1:2222/example.git"} {
		if !strings.Contains(out, want) {
			t.Errorf("info lacks %q:\n%s", want, out)
		}
	}
	app, err := h.api.App(context.Background(), "example")
	if err != nil {
		t.Fatal(err)
	}
	rel := h.deploy(app, nil)
	h.ok("scale", "--no-wait", "web=2")
	var info appInfo
	if err := json.Unmarshal([]byte(h.ok("-a", "example", "info", "--json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.App == nil || info.ID != app.ID || info.ReleaseID != rel.ID || info.Release == nil || info.Release.ID != rel.ID || info.Processes["web"] != 2 {
		t.Fatalf("info --json = %+v, want release %s with web=2", info, rel.ID)
	}
	if out := squash(h.ok("info")); !strings.Contains(out, "Processes: web=2 worker=0") || !strings.Contains(out, "Release: v1 (") {
		t.Fatalf("info:\n%s", out)
	}

	// delete asks to confirm.
	res = h.runInput("nope\n", "delete")
	if res.code != 1 || !strings.Contains(res.stderr, "nothing deleted") {
		t.Fatalf("delete with a wrong confirmation: %+v", res)
	}
	res = h.run("delete") // no input at all
	if lines := strings.Split(res.stderr, "\n"); res.code != 1 || len(lines) != 3 || !strings.HasPrefix(lines[1], "flynn: no confirmation read (use --yes") {
		t.Fatalf("delete without input: %+v, want the prompt, then one error line", res)
	}
	if _, err := h.api.App(context.Background(), "example"); err != nil {
		t.Fatalf("app gone after refused deletes: %v", err)
	}
	res = h.runInput("example\n", "delete")
	if res.code != 0 || !strings.Contains(res.stdout, "Deleted example") || !strings.Contains(res.stdout, "Removed git remote flynn") {
		t.Fatalf("delete: %+v", res)
	}
	if got := gitRemote(t, h, "flynn"); got != "" {
		t.Fatalf("git remote flynn still %q after delete", got)
	}
	h.ok("-a", "other", "delete", "--yes")
	h.fails("no app named other on cluster test (`flynn apps` lists them)", "-a", "other", "info")
	h.fails("no app given", "info")
}

func TestKeys(t *testing.T) {
	h := newHarness(t)
	h.fails("no public key", "key", "add")

	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " me@laptop\n"
	if err := os.MkdirAll(filepath.Join(h.env.Home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.env.Home, ".ssh", "id_ed25519.pub"), []byte(authorized), 0o644); err != nil {
		t.Fatal(err)
	}
	fp := ssh.FingerprintSHA256(sshPub)

	if out := h.ok("key", "add"); out != "Key "+fp+" added.\n" {
		t.Fatalf("key add printed %q, want the fingerprint %s", out, fp)
	}
	h.fails("exists", "key", "add", filepath.Join(h.env.Home, ".ssh", "id_ed25519.pub"))
	out := h.ok("key", "list")
	if !strings.Contains(out, fp) || !strings.Contains(out, "me@laptop") {
		t.Fatalf("key list:\n%s", out)
	}
	var keys []*controller.Key
	if err := json.Unmarshal([]byte(h.ok("key", "--json")), &keys); err != nil || len(keys) != 1 || keys[0].Fingerprint != fp {
		t.Fatalf("key --json = %v, %v", keys, err)
	}
	h.ok("key", "remove", fp)
	if out := h.ok("key", "list"); strings.Contains(out, fp) {
		t.Fatalf("key still listed after remove:\n%s", out)
	}
	h.fails("not found", "key", "remove", fp)
}
