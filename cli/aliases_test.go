package cli

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/logaggregator"
)

// TestAliasesCopyCommands: each of Heroku's names takes the flags of the
// command it stands for, and its help is that command's, but for the name.
func TestAliasesCopyCommands(t *testing.T) {
	r := &runner{env: &Env{}}
	app := newApp(r)
	copies := map[string][]string{
		"releases": {"release", "list"}, "routes": {"route", "list"},
		"config:set": {"env", "set"}, "config:get": {"env", "get"}, "config:unset": {"env", "unset"},
		"ps:scale": {"scale"}, "ps:restart": {"restart"},
		"apps:create": {"create"}, "apps:info": {"info"}, "apps:destroy": {"delete"}, "apps:open": {"open"},
		"domains:add": {"route", "add", "http"},
	}
	for _, c := range r.herokuCommands() {
		if _, ok := copies[c.Name]; !ok {
			t.Errorf("no test for %s", c.Name)
		}
	}
	names := func(c *urfave.Command) []string {
		var out []string
		for _, f := range c.Flags {
			out = append(out, f.Names()...)
		}
		return out
	}
	h := &harness{t: t, env: Env{ConfigPath: t.TempDir() + "/.flynnrc"}}
	for alias, path := range copies {
		got := findCommand(app.Commands, alias)
		if got == nil || !got.Hidden {
			t.Errorf("%s is not a hidden command", alias)
			continue
		}
		want := subcommand(&urfave.Command{Subcommands: app.Commands}, path...)
		if !slices.Equal(names(got), names(want)) || got.Usage != want.Usage || got.ArgsUsage != want.ArgsUsage {
			t.Errorf("%s has flags %v, usage %q %q; %s has %v, %q %q", alias, names(got), got.Usage, got.ArgsUsage, strings.Join(path, " "), names(want), want.Usage, want.ArgsUsage)
		}
		aliasHelp := h.ok(alias, "--help")
		cmdHelp := h.ok(append(slices.Clone(path), "--help")...)
		if strings.ReplaceAll(aliasHelp, "flynn "+alias, "flynn "+strings.Join(path, " ")) != cmdHelp {
			t.Errorf("flynn %s --help:\n%s\ndiffers from flynn %s --help:\n%s", alias, aliasHelp, strings.Join(path, " "), cmdHelp)
		}
	}
	_, commands, _ := strings.Cut(h.ok("--help"), "COMMANDS:")
	if strings.Contains(commands, "config:set") || !strings.Contains(commands, "log, logs") || !strings.Contains(commands, "env, config") {
		t.Errorf("flynn --help lists the hidden copies, or not the aliases:\n%s", commands)
	}
}

// ids are what differs between two runs of a command that changes
// something: job, route and release ids, release versions and times.
var ids = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\bv[0-9]+\b|in [0-9.]+m?s\.`)

// TestAliasesRun runs each of Heroku's names beside the command it stands
// for, and wants the same output (but for the ids of what each made).
func TestAliasesRun(t *testing.T) {
	h := newHarness(t)
	now := time.Now().Add(time.Hour) // ages the same in both runs
	h.env.Now = func() time.Time { return now }
	ctx := context.Background()
	app := h.app("example")
	h.deploy(app, map[string]string{"A": "1"})
	for _, name := range []string{"one", "two", "three", "four"} {
		h.app(name)
	}
	route := &controller.Route{Type: controller.RouteTypeHTTP, Service: "example-web", Domain: "example.example.test"}
	if err := h.api.CreateRoute(ctx, app.ID, route); err != nil {
		t.Fatal(err)
	}
	h.runner.appLogs.Append([]logaggregator.Line{{AppID: app.ID, JobID: webJob, ProcessType: "web", Time: time.Now(), Data: "hello\n"}})

	tests := []struct {
		alias, command []string
		// same maps the alias's output to the command's: the names of
		// what each changed.
		same []string
	}{
		{alias: []string{"logs"}, command: []string{"log"}},
		{alias: []string{"releases"}, command: []string{"release", "list"}},
		{alias: []string{"routes"}, command: []string{"route", "list"}},
		{alias: []string{"config"}, command: []string{"env"}},
		{alias: []string{"config", "--json"}, command: []string{"env", "--json"}},
		{alias: []string{"config:get", "A"}, command: []string{"env", "get", "A"}},
		{alias: []string{"config:set", "B=2"}, command: []string{"env", "set", "C=3"}},
		{alias: []string{"config", "set", "D=4"}, command: []string{"env", "set", "E=5"}},
		{alias: []string{"config:unset", "B"}, command: []string{"env", "unset", "C"}},
		{alias: []string{"ps:scale"}, command: []string{"scale"}},
		{alias: []string{"ps:scale", "--no-wait", "web=0"}, command: []string{"scale", "--no-wait", "web=0"}},
		{alias: []string{"ps:restart"}, command: []string{"restart"}},
		{alias: []string{"apps:info"}, command: []string{"info"}},
		{alias: []string{"apps:open", "/x"}, command: []string{"open", "/x"}},
		{alias: []string{"domains:add", "a.example.test", "--sticky"}, command: []string{"route", "add", "http", "b.example.test", "--sticky"}, same: []string{"a.example.test", "b.example.test"}},
		{alias: []string{"apps:create", "five"}, command: []string{"create", "six"}, same: []string{"five", "six"}},
		{alias: []string{"apps:destroy", "-a", "one", "--yes"}, command: []string{"delete", "-a", "two", "--yes"}, same: []string{"one", "two"}},
		{alias: []string{"-a", "three", "apps:destroy", "-y"}, command: []string{"-a", "four", "delete", "-y"}, same: []string{"three", "four"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.alias, " "), func(t *testing.T) {
			args := func(a []string) []string {
				if slices.Contains(a, "-a") {
					return a
				}
				return append([]string{"-a", "example"}, a...)
			}
			got := h.run(args(tt.alias)...)
			want := h.run(args(tt.command)...)
			gotOut := ids.ReplaceAllString(strings.NewReplacer(tt.same...).Replace(got.stdout+got.stderr), "ID")
			wantOut := ids.ReplaceAllString(want.stdout+want.stderr, "ID")
			if got.code != want.code || gotOut != wantOut {
				t.Errorf("flynn %s: exit %d\n%s\nflynn %s: exit %d\n%s", strings.Join(tt.alias, " "), got.code, got.stdout+got.stderr, strings.Join(tt.command, " "), want.code, want.stdout+want.stderr)
			}
			if want.stdout == "" && want.code == 0 && tt.alias[0] != "config:unset" {
				t.Errorf("flynn %s printed nothing: a poor comparison", strings.Join(tt.command, " "))
			}
		})
	}
	// What the changes did.
	rel, err := h.api.AppRelease(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"A": "1", "D": "4", "E": "5"}; !maps.Equal(rel.Env, want) {
		t.Errorf("env after config:set, config:unset = %v, want %v", rel.Env, want)
	}
	for _, gone := range []string{"one", "two", "three", "four"} {
		if _, err := h.api.App(ctx, gone); err == nil {
			t.Errorf("app %s not deleted", gone)
		}
	}
	if _, err := h.api.App(ctx, "five"); err != nil {
		t.Errorf("apps:create: %v", err)
	}
}
