package hostcli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/pkg/cmdline"
)

// TestUsageErrors runs command lines that fail on their arguments, before
// any call to the host.
func TestUsageErrors(t *testing.T) {
	h := newFakeHost(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"inspect without a job", []string{"inspect"}, "flynn-host: usage: flynn-host inspect JOB\n"},
		{"log without a job", []string{"log"}, "flynn-host: usage: flynn-host log [-f] JOB\n"},
		{"stop without a job", []string{"stop"}, "flynn-host: usage: flynn-host stop JOB [JOB ...]\n"},
		{"run without an image", []string{"run"}, "flynn-host: usage: flynn-host run IMAGE [CMD...]\n"},
		{"bootstrap without a manifest", []string{"bootstrap"}, "flynn-host: usage: flynn-host bootstrap [flags] MANIFEST\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.run(t, Env{}, tt.args...)
			if res.code != 1 || res.stderr != tt.want {
				t.Fatalf("exit %d, stderr %q; want exit 1, %q", res.code, res.stderr, tt.want)
			}
		})
	}
}

func TestExtraCommandsSeeGlobalFlags(t *testing.T) {
	var gotKey string
	daemon := &cli.Command{Name: "daemon", Action: func(c *cli.Context) error {
		gotKey, _ = cmdline.SecretOf(c, "cluster-key")
		return nil
	}}
	var stdout bytes.Buffer
	code := Run(context.Background(), []string{"flynn-host", "--key", "secret", "daemon"}, &Env{Stdout: &stdout}, daemon)
	if code != 0 || gotKey != "secret" {
		t.Fatalf("exit %d, daemon saw --key %q; want 0 and %q", code, gotKey, "secret")
	}
	// Help lists the extra commands first, then the operator's.
	if code := Run(context.Background(), []string{"flynn-host", "--help"}, &Env{Stdout: &stdout}, daemon); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	help := stdout.String()
	if i, j := strings.Index(help, "daemon"), strings.Index(help, "ps "); i < 0 || j < 0 || i > j {
		t.Fatalf("help does not list daemon before ps:\n%s", help)
	}
}
