package provider

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/openflynn/flynn/pkg/cmdline"
)

func TestCommandLine(t *testing.T) {
	job := map[string]string{
		"PORT": "55001", "FLYNN_DATABASE_URL": "postgres://postgres:pw@leader.postgres.discoverd/postgres",
		"FLYNN_POSTGRES_API_KEY": "k", "FLYNN_DOMAIN": "example.test", "FLYNN_DISCOVERD_URL": "http://10.0.0.2:1111,http://10.0.0.3:1111",
	}
	with := func(changes map[string]string) map[string]string {
		env := map[string]string{}
		for k, v := range job {
			env[k] = v
		}
		for k, v := range changes {
			env[k] = v
		}
		return env
	}
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, cfg Config)
		fails string
	}{
		{
			name: "a Flynn job's environment",
			env:  job,
			check: func(t *testing.T, cfg Config) {
				if cfg.HTTPAddr != ":55001" || cfg.Key != "k" || cfg.Domain != "example.test" || cfg.RoutePort != DefaultRoutePort || cfg.DialDatabase == nil {
					t.Errorf("config = %+v", cfg)
				}
			},
		},
		{
			name: "another route port, a domain with its dot",
			env:  with(map[string]string{"FLYNN_ROUTE_PORT": "3500", "FLYNN_DOMAIN": "example.test."}),
			check: func(t *testing.T, cfg Config) {
				if cfg.RoutePort != 3500 || cfg.Domain != "example.test" {
					t.Errorf("config = %+v", cfg)
				}
			},
		},
		{
			name: "outside a job, no discoverd",
			env:  with(map[string]string{"PORT": "", "FLYNN_DISCOVERD_URL": ""}),
			check: func(t *testing.T, cfg Config) {
				if cfg.HTTPAddr != ":8080" || cfg.DialDatabase != nil {
					t.Errorf("config = %+v, want the default address and no discoverd dialer", cfg)
				}
			},
		},
		{name: "no key", env: with(map[string]string{"FLYNN_POSTGRES_API_KEY": ""}), fails: "pass --insecure"},
		{name: "no database", env: with(map[string]string{"FLYNN_DATABASE_URL": ""}), fails: "a database URL is required"},
		{name: "no domain", env: with(map[string]string{"FLYNN_DOMAIN": ""}), fails: "the cluster domain is required"},
		{name: "bad route port", env: with(map[string]string{"FLYNN_ROUTE_PORT": "70000"}), fails: "--route-port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"FLYNN_EXTERNAL_IP", "EXTERNAL_IP", "FLYNN_ROUTE_PORT", "FLYNN_INSECURE"} {
				t.Setenv(k, "")
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			d := Daemon()
			var got Config
			d.Run = func(_ context.Context, cfg Config, _ *slog.Logger) error {
				got = cfg
				return nil
			}
			var out bytes.Buffer
			code := cmdline.Execute(t.Context(), d.App(), []string{"flynn-postgres-api"}, &out)
			if tt.fails != "" {
				if code != 2 || !strings.Contains(out.String(), tt.fails) {
					t.Fatalf("exit %d, output %q; want 2 and %q", code, out.String(), tt.fails)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, out.String())
			}
			tt.check(t, got)
		})
	}
}
