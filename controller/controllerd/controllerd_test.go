package controllerd

import (
	"testing"
	"time"

	"github.com/openflynn/flynn/controller/server"
	"github.com/openflynn/flynn/pkg/cmdline/cmdlinetest"
)

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, cfg server.Config)
		fails string
	}{
		{
			name: "a Flynn job's environment",
			env:  map[string]string{"PORT": "1114", "FLYNN_DATABASE_URL": "postgres://x", "FLYNN_CONTROLLER_KEY": "ck", "FLYNN_DISCOVERD_URL": "http://127.0.0.1:1111"},
			check: func(t *testing.T, cfg server.Config) {
				if cfg.Addr != ":1114" || cfg.DatabaseURL != "postgres://x" || cfg.AuthKey != "ck" || cfg.Runner == nil || cfg.DialDatabase == nil ||
					cfg.RouterMetrics == nil || cfg.EventRetention != server.DefaultEventRetention {
					t.Errorf("config = %+v", cfg)
				}
				// Providers' URLs name discoverd services.
				if cfg.ProviderClient == nil || cfg.ProviderClient.Timeout != 30*time.Second {
					t.Errorf("provider client = %+v, want one through discoverd with a 30 s timeout", cfg.ProviderClient)
				}
			},
		},
		{
			// Until flynn-host gives every job FLYNN_DISCOVERD_URL: the
			// discoverd of the job's node.
			name: "a job without a discoverd URL",
			env:  map[string]string{"PORT": "55001", "FLYNN_DATABASE_URL": "postgres://postgres@leader.postgres.discoverd/controller", "FLYNN_CONTROLLER_KEY": "ck", "FLYNN_EXTERNAL_IP": "10.0.0.2"},
			check: func(t *testing.T, cfg server.Config) {
				if cfg.Addr != ":55001" || cfg.Runner == nil || cfg.DialDatabase == nil {
					t.Errorf("config = %+v, want a runner and a database dialer through discoverd", cfg)
				}
			},
		},
		{
			name: "the names of the release before",
			env:  map[string]string{"PORT": "", "DATABASE_URL": "postgres://y", "AUTH_KEY": "old"},
			check: func(t *testing.T, cfg server.Config) {
				if cfg.Addr != ":8081" || cfg.DatabaseURL != "postgres://y" || cfg.AuthKey != "old" || cfg.Runner != nil || cfg.DialDatabase != nil || cfg.ProviderClient != nil || cfg.RouterMetrics != nil {
					t.Errorf("config = %+v", cfg)
				}
			},
		},
		{name: "no database", env: map[string]string{"PORT": "", "FLYNN_CONTROLLER_KEY": "ck"}, fails: "a database URL is required"},
		{
			name: "an event retention",
			env:  map[string]string{"PORT": "", "FLYNN_DATABASE_URL": "postgres://x", "FLYNN_CONTROLLER_KEY": "ck", "FLYNN_EVENT_RETENTION": "72h"},
			check: func(t *testing.T, cfg server.Config) {
				if cfg.EventRetention != 72*time.Hour {
					t.Errorf("event retention = %v, want 72h", cfg.EventRetention)
				}
			},
		},
		{
			name: "a default route domain",
			env:  map[string]string{"PORT": "", "FLYNN_DATABASE_URL": "postgres://x", "FLYNN_CONTROLLER_KEY": "ck", "FLYNN_DEFAULT_ROUTE_DOMAIN": "dev.localflynn.com"},
			check: func(t *testing.T, cfg server.Config) {
				if cfg.DefaultRouteDomain != "dev.localflynn.com" {
					t.Errorf("default route domain = %q, want dev.localflynn.com", cfg.DefaultRouteDomain)
				}
			},
		},
		{name: "a default route domain that is none", env: map[string]string{"PORT": "", "FLYNN_DATABASE_URL": "postgres://x", "FLYNN_CONTROLLER_KEY": "ck", "FLYNN_DEFAULT_ROUTE_DOMAIN": "*.example.com"}, fails: "--default-route-domain"},
		{name: "a negative retention", env: map[string]string{"PORT": "", "FLYNN_DATABASE_URL": "postgres://x", "FLYNN_CONTROLLER_KEY": "ck", "FLYNN_EVENT_RETENTION": "-1h"}, fails: "--event-retention"},
		// Without the controller key the API would take everyone for the
		// platform itself.
		{name: "no key", env: map[string]string{"PORT": "", "FLYNN_DATABASE_URL": "postgres://x"}, fails: "pass --insecure"},
		{
			name: "no key, --insecure",
			env:  map[string]string{"PORT": "", "FLYNN_DATABASE_URL": "postgres://x", "FLYNN_INSECURE": "true"},
			check: func(t *testing.T, cfg server.Config) {
				if cfg.AuthKey != "" {
					t.Errorf("key = %q, want none", cfg.AuthKey)
				}
			},
		},
	}
	cmd := cmdlinetest.Command[Config]{Daemon: Daemon}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fails != "" {
				cmd.Refused(t, tt.env, tt.fails)
				return
			}
			tt.check(t, cmd.Accepted(t, tt.env).Server)
		})
	}
}
