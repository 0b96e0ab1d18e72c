package cli

import (
	"strings"
	"testing"
)

func TestRemoteAdd(t *testing.T) {
	h := newHarness(t)
	h.app("example")
	h.app("other")
	h.fails("not in a git work tree", "-a", "example", "remote", "add")
	gitInit(t, h)

	if out := h.ok("-a", "example", "remote", "add"); out != "Added git remote flynn: ssh://git@127.0.0.1:2222/example.git\n" {
		t.Fatalf("remote add printed %q", out)
	}
	if got := gitRemote(t, h, "flynn"); got != "ssh://git@127.0.0.1:2222/example.git" {
		t.Fatalf("git remote flynn = %q", got)
	}
	if out := h.ok("remote", "add", "-a", "example"); out != "Git remote flynn is example's already: ssh://git@127.0.0.1:2222/example.git\n" {
		t.Fatalf("remote add again printed %q", out)
	}
	h.fails(`git remote "flynn" exists already and points at ssh://git@127.0.0.1:2222/example.git`, "-a", "other", "remote", "add")
	if out := h.ok("-a", "other", "remote", "add", "staging"); out != "Added git remote staging: ssh://git@127.0.0.1:2222/other.git\n" {
		t.Fatalf("remote add staging printed %q", out)
	}
	h.fails("no app named nope on cluster test", "-a", "nope", "remote", "add", "nope")
	h.fails("want at most one REMOTE", "-a", "example", "remote", "add", "a", "b")
	if got := gitRemote(t, h, "nope"); got != "" {
		t.Errorf("remote add of a missing app added %q", got)
	}
}

// TestAppSelection: -a, then -r, then $FLYNN_APP, then the flynn remote.
func TestAppSelection(t *testing.T) {
	h := newHarness(t)
	for _, name := range []string{"example", "other", "third"} {
		h.app(name)
	}
	gitInit(t, h)
	h.fails(`no app given: use -a APP or -r REMOTE, set $FLYNN_APP`, "info")
	h.ok("-a", "example", "remote", "add")
	h.ok("-a", "other", "remote", "add", "staging")

	tests := []struct {
		name, envApp string
		args         []string
		want         string
	}{
		{"flynn remote", "", []string{"info"}, "example"},
		{"-r before the command", "", []string{"-r", "staging", "info"}, "other"},
		{"-r after the command", "", []string{"info", "-r", "staging"}, "other"},
		{"--remote=", "", []string{"info", "--remote=staging"}, "other"},
		{"FLYNN_APP over the flynn remote", "third", []string{"info"}, "third"},
		{"-r over FLYNN_APP", "third", []string{"-r", "staging", "info"}, "other"},
		{"-a over all", "third", []string{"-r", "staging", "-a", "example", "info"}, "example"},
		{"-r of a subcommand", "", []string{"env", "set", "--no-wait", "-r", "staging", "X=1"}, "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.env.App = tt.envApp
			defer func() { h.env.App = "" }()
			out := h.ok(tt.args...)
			if tt.args[0] == "env" {
				out = h.ok("-a", tt.want, "env", "get", "X")
				if out != "1\n" {
					t.Fatalf("env set %v did not set X of %s", tt.args, tt.want)
				}
				return
			}
			if !strings.HasPrefix(out, "=== "+tt.want+"\n") {
				t.Fatalf("flynn %s showed:\n%s\nwant app %s", strings.Join(tt.args, " "), out, tt.want)
			}
		})
	}
	h.fails(`no git remote "nope" here to take the app from`, "-r", "nope", "info")

	// create's own -r still names the remote to add; run's -r the release.
	if out := h.ok("create", "fourth", "-r", "prod"); !strings.Contains(out, "Added git remote prod: ssh://git@127.0.0.1:2222/fourth.git") {
		t.Errorf("create -r printed %q", out)
	}
	h.fails("release: 'nope' does not match", "-a", "example", "run", "-r", "nope", "true")
}
