package provider

import (
	"testing"

	"github.com/openflynn/flynn/pkg/cmdline/cmdlinetest"
)

func TestCommandLine(t *testing.T) {
	// A Flynn job's environment, which each case changes.
	cmd := cmdlinetest.Command[Config]{Daemon: Daemon, Env: map[string]string{
		"FLYNN_EXTERNAL_IP": "", "EXTERNAL_IP": "", "FLYNN_ROUTE_PORT": "", "FLYNN_INSECURE": "",
		"PORT": "55001", "FLYNN_DATABASE_URL": "postgres://postgres:pw@leader.postgres.discoverd/postgres",
		"FLYNN_POSTGRES_API_KEY": "k", "FLYNN_DOMAIN": "example.test", "FLYNN_DISCOVERD_URL": "http://10.0.0.2:1111,http://10.0.0.3:1111",
	}}
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, cfg Config)
		fails string
	}{
		{
			name: "a Flynn job's environment",
			check: func(t *testing.T, cfg Config) {
				if cfg.HTTPAddr != ":55001" || cfg.Key != "k" || cfg.Domain != "example.test" || cfg.RoutePort != DefaultRoutePort || cfg.DialDatabase == nil {
					t.Errorf("config = %+v", cfg)
				}
			},
		},
		{
			name: "another route port, a domain with its dot",
			env:  map[string]string{"FLYNN_ROUTE_PORT": "3500", "FLYNN_DOMAIN": "example.test."},
			check: func(t *testing.T, cfg Config) {
				if cfg.RoutePort != 3500 || cfg.Domain != "example.test" {
					t.Errorf("config = %+v", cfg)
				}
			},
		},
		{
			name: "outside a job, no discoverd",
			env:  map[string]string{"PORT": "", "FLYNN_DISCOVERD_URL": ""},
			check: func(t *testing.T, cfg Config) {
				if cfg.HTTPAddr != ":8080" || cfg.DialDatabase != nil {
					t.Errorf("config = %+v, want the default address and no discoverd dialer", cfg)
				}
			},
		},
		{name: "no key", env: map[string]string{"FLYNN_POSTGRES_API_KEY": ""}, fails: "pass --insecure"},
		{name: "no database", env: map[string]string{"FLYNN_DATABASE_URL": ""}, fails: "a database URL is required"},
		{name: "no domain", env: map[string]string{"FLYNN_DOMAIN": ""}, fails: "the cluster domain is required"},
		{name: "bad route port", env: map[string]string{"FLYNN_ROUTE_PORT": "70000"}, fails: "--route-port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fails != "" {
				cmd.Refused(t, tt.env, tt.fails)
				return
			}
			tt.check(t, cmd.Accepted(t, tt.env))
		})
	}
}
