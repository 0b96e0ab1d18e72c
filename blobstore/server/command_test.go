package server

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/openflynn/flynn/pkg/cmdline"
)

// parse runs the blobstore's command line with args and env and returns the
// Config it would run with, or the exit status and output of a usage error.
func parse(t *testing.T, args []string, env map[string]string) (Config, int, string) {
	t.Helper()
	t.Setenv("PORT", "") // as outside a job, unless env says otherwise
	if env["FLYNN_BLOBSTORE_KEY"] == "" && env["FLYNN_AUTH_KEY"] == "" && !slices.Contains(args, "--insecure") {
		t.Setenv("FLYNN_BLOBSTORE_KEY", "default-key")
	}
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
	code := cmdline.Execute(t.Context(), d.App(), append([]string{"blobstore"}, args...), &out)
	return got, code, out.String()
}

func TestCommandLine(t *testing.T) {
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
			cfg, code, out := parse(t, tt.args, tt.env)
			if tt.fails != "" {
				if code != 2 || !strings.Contains(out, tt.fails) {
					t.Fatalf("exit %d, output %q; want 2 and %q", code, out, tt.fails)
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
