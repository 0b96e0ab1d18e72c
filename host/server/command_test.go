package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/cmdline"
)

// parse runs `flynn-host daemon` with args and returns the Config it would
// run with, or the exit status and output of a usage error.
func parse(t *testing.T, args []string, env map[string]string) (Config, int, string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	d := Daemon()
	var got Config
	d.Run = func(_ context.Context, cfg Config, _ *slog.Logger) error {
		got = cfg
		return nil
	}
	var out bytes.Buffer
	code := cmdline.Execute(t.Context(), d.App(), append([]string{"flynn-host", "--state-dir", t.TempDir(), "--host-id", "h1"}, args...), &out)
	return got, code, out.String()
}

func TestCommandLineAppNetwork(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, cfg Config)
		fails string
	}{
		{
			name: "defaults",
			check: func(t *testing.T, cfg Config) {
				d := cfg.Daemon
				if d.AppNetwork != "flynn-apps" || d.AppBridge != "flynnapps0" || d.AppUser != "1000:1000" || d.Domain != "" ||
					d.NoFirewall || d.FirewallChain != "FLYNN-APPS" || d.RouterPorts != "80,443,3000:3999" || d.DiskCheckInterval != 5*time.Second {
					t.Errorf("daemon config = %+v", d)
				}
			},
		},
		{
			name: "flags",
			args: []string{"--app-network", "apps2", "--app-bridge", "apps2br", "--app-user", "2000:2000", "--domain", "example.com",
				"--firewall=false", "--firewall-chain", "APPS2", "--router-ports", "80, 8000-8999", "--disk-check-interval", "1s"},
			check: func(t *testing.T, cfg Config) {
				d := cfg.Daemon
				if d.AppNetwork != "apps2" || d.AppBridge != "apps2br" || d.AppUser != "2000:2000" || d.Domain != "example.com" ||
					!d.NoFirewall || d.FirewallChain != "APPS2" || d.RouterPorts != "80,8000:8999" || d.DiskCheckInterval != time.Second {
					t.Errorf("daemon config = %+v", d)
				}
			},
		},
		{
			name: "environment",
			env:  map[string]string{"FLYNN_DOMAIN": "flynn.example", "FLYNN_FIREWALL": "false"},
			check: func(t *testing.T, cfg Config) {
				if cfg.Daemon.Domain != "flynn.example" || !cfg.Daemon.NoFirewall {
					t.Errorf("daemon config = %+v", cfg.Daemon)
				}
			},
		},
		{name: "bad router ports", args: []string{"--router-ports", "80,web"}, fails: "--router-ports"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, code, out := parse(t, tt.args, tt.env)
			if tt.fails != "" {
				if code != 2 || !strings.Contains(out, tt.fails) {
					t.Fatalf("exit %d with %q, want a usage error with %q", code, out, tt.fails)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, out)
			}
			tt.check(t, cfg)
		})
	}
}
