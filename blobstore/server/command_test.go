package server

import (
	"maps"
	"slices"
	"testing"

	"github.com/openflynn/flynn/pkg/cmdline/cmdlinetest"
)

func TestCommandLine(t *testing.T) {
	cmd := cmdlinetest.Command[Config]{Daemon: Daemon, Env: map[string]string{"PORT": ""}} // as outside a job, unless a case says otherwise
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, cfg Config)
		fails string // a usage error containing this
	}{
		{
			name: "defaults",
			check: func(t *testing.T, cfg Config) {
				if cfg.HTTPAddr != DefaultHTTPAddr || cfg.Backend != BackendFS || cfg.Dir != DefaultDir || cfg.MaxSize != DefaultMaxSize || cfg.IdleTimeout != DefaultIdleTimeout || cfg.Registrar != nil || cfg.AuthKey != "default-key" {
					t.Errorf("config = %+v", cfg)
				}
			},
		},
		{
			name: "a Flynn job's environment",
			env:  map[string]string{"PORT": "55001", "FLYNN_BLOBSTORE_KEY": "k", "FLYNN_DATABASE_URL": "postgres://x", "FLYNN_DISCOVERD_URL": "http://127.0.0.1:1111", "FLYNN_EXTERNAL_IP": "10.0.0.2"},
			args: []string{"--backend", "postgres"},
			check: func(t *testing.T, cfg Config) {
				if cfg.HTTPAddr != ":55001" || cfg.AuthKey != "k" || cfg.DatabaseURL != "postgres://x" || cfg.Registrar == nil || cfg.AdvertiseHost != "10.0.0.2" || cfg.DialDatabase == nil {
					t.Errorf("config = %+v", cfg)
				}
			},
		},
		{
			// bootstrap/manifest.json's: flynn-host registers the job, and
			// the database is found through the node's discoverd.
			name: "a job that flynn-host registers",
			env:  map[string]string{"PORT": "55001", "FLYNN_BLOBSTORE_KEY": "k", "FLYNN_DATABASE_URL": "postgres://postgres@leader.postgres.discoverd/blobstore", "FLYNN_EXTERNAL_IP": "10.0.0.2"},
			args: []string{"--backend", "postgres", "--register=false"},
			check: func(t *testing.T, cfg Config) {
				if cfg.Registrar != nil || cfg.DialDatabase == nil {
					t.Errorf("config = %+v, want no registration and a database dialer", cfg)
				}
			},
		},
		{
			name: "no registration with a discoverd URL",
			env:  map[string]string{"FLYNN_DISCOVERD_URL": "http://10.0.0.2:1111", "FLYNN_REGISTER": "false"},
			check: func(t *testing.T, cfg Config) {
				if cfg.Registrar != nil || cfg.DialDatabase != nil {
					t.Errorf("config = %+v, want neither a registration nor a database dialer (fs backend)", cfg)
				}
			},
		},
		{
			name: "the names of the release before",
			env:  map[string]string{"FLYNN_AUTH_KEY": "k", "DATABASE_URL": "postgres://x", "DISCOVERD": "http://127.0.0.1:1111", "EXTERNAL_IP": "10.0.0.2"},
			args: []string{"--backend", "postgres"},
			check: func(t *testing.T, cfg Config) {
				if cfg.AuthKey != "k" || cfg.DatabaseURL != "postgres://x" || cfg.Registrar == nil || cfg.AdvertiseHost != "10.0.0.2" {
					t.Errorf("config = %+v", cfg)
				}
			},
		},
		{
			name: "max size in MiB",
			args: []string{"--max-size", "512MiB"},
			check: func(t *testing.T, cfg Config) {
				if cfg.MaxSize != 512<<20 {
					t.Errorf("max size = %d", cfg.MaxSize)
				}
			},
		},
		{name: "bad max size", args: []string{"--max-size", "lots"}, fails: "want bytes"},
		{name: "zero max size", args: []string{"--max-size", "0"}, fails: "--max-size must be more than 0"},
		{name: "unknown backend", args: []string{"--backend", "s3"}, fails: `--backend must be fs or postgres, not "s3"`},
		{name: "postgres without database", args: []string{"--backend", "postgres"}, fails: "the postgres backend needs --database-url"},
		{name: "stray argument", args: []string{"serve"}, fails: "unexpected arguments: serve"},
		// Without a key every request would be admitted.
		{name: "no key", env: map[string]string{"FLYNN_BLOBSTORE_KEY": ""}, fails: "pass --insecure"},
		{
			name: "no key, --insecure",
			args: []string{"--insecure"},
			check: func(t *testing.T, cfg Config) {
				if cfg.AuthKey != "" {
					t.Errorf("key = %q, want none", cfg.AuthKey)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A key, unless the case gives one or is about running without.
			env := map[string]string{}
			if tt.env["FLYNN_AUTH_KEY"] == "" && !slices.Contains(tt.args, "--insecure") {
				env["FLYNN_BLOBSTORE_KEY"] = "default-key"
			}
			maps.Copy(env, tt.env)
			if tt.fails != "" {
				cmd.Refused(t, env, tt.fails, tt.args...)
				return
			}
			tt.check(t, cmd.Accepted(t, env, tt.args...))
		})
	}
}
