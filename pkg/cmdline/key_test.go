package cmdline

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// keyDaemon is a daemon whose API the cluster key guards; withInsecure
// says whether it defines --insecure, as it must.
func keyDaemon(got *string, ran *bool, withInsecure bool) Daemon[string] {
	flags := Secret("cluster-key", "the cluster key")
	if withInsecure {
		flags = append(flags, Insecure())
	}
	return Daemon[string]{
		Name:  "keyd",
		Flags: flags,
		Config: func(c *cli.Context, logger *slog.Logger) (string, error) {
			return RequiredKey(c, logger, "cluster-key")
		},
		Run: func(_ context.Context, key string, _ *slog.Logger) error {
			*got, *ran = key, true
			return nil
		},
	}
}

func TestRequiredKey(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		noFlag   bool // the daemon forgot to define --insecure
		wantCode int
		wantKey  string
		output   []string // substrings of the output; "!x": x must be absent
	}{
		{name: "a key", env: map[string]string{"FLYNN_CLUSTER_KEY": "k"}, wantKey: "k", output: []string{"!WITHOUT A KEY"}},
		{name: "a key and --insecure: the key counts", args: []string{"--insecure"}, env: map[string]string{"FLYNN_CLUSTER_KEY": "k"}, wantKey: "k", output: []string{"!WITHOUT A KEY"}},
		{
			name: "no key: refused, naming the ways out", wantCode: 2,
			output: []string{"keyd: no cluster-key", "--cluster-key-file", "$FLYNN_CLUSTER_KEY", "--insecure"},
		},
		{name: "an empty key is no key", env: map[string]string{"FLYNN_CLUSTER_KEY": ""}, wantCode: 2, output: []string{"--insecure"}},
		{name: "no key with --insecure: a loud warning", args: []string{"--insecure"}, output: []string{"level=WARN", "RUNNING WITHOUT A KEY"}},
		{name: "no key with FLYNN_INSECURE", env: map[string]string{"FLYNN_INSECURE": "true"}, output: []string{"RUNNING WITHOUT A KEY"}},
		{name: "a daemon without the flag", noFlag: true, wantCode: 2, output: []string{"needs the daemon to define --insecure"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var got string
			var ran bool
			var out bytes.Buffer
			code := Execute(t.Context(), keyDaemon(&got, &ran, !tt.noFlag).App(), append([]string{"keyd"}, tt.args...), &out)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tt.wantCode, out.String())
			}
			if ran != (tt.wantCode == 0) || got != tt.wantKey {
				t.Errorf("ran %v with key %q, want ran %v with %q", ran, got, tt.wantCode == 0, tt.wantKey)
			}
			for _, w := range tt.output {
				if not, ok := strings.CutPrefix(w, "!"); ok {
					if strings.Contains(out.String(), not) {
						t.Errorf("output has %q:\n%s", not, out.String())
					}
				} else if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestRequiredKeyOfSubcommand: flynn-host takes its key above the daemon
// command too, and --insecure on the daemon command.
func TestRequiredKeyOfSubcommand(t *testing.T) {
	var got string
	var ran bool
	app := &cli.App{Name: "flynn-host", Commands: []*cli.Command{keyDaemon(&got, &ran, true).Command("daemon")}}
	var out bytes.Buffer
	if code := Execute(t.Context(), app, []string{"flynn-host", "daemon"}, &out); code != 2 || !strings.Contains(out.String(), "--insecure") {
		t.Fatalf("without a key: exit %d, output %q; want 2 naming --insecure", code, out.String())
	}
	out.Reset()
	if code := Execute(t.Context(), app, []string{"flynn-host", "daemon", "--insecure"}, &out); code != 0 || !ran {
		t.Fatalf("with --insecure: exit %d, ran %v, output %q", code, ran, out.String())
	}
}
