package routerd

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openflynn/flynn/pkg/cmdline"
)

func TestCommandLine(t *testing.T) {
	static := filepath.Join(t.TempDir(), "routes.json")
	if err := os.WriteFile(static, []byte(`{"routes": [], "services": {}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, cfg Config)
		fails string
	}{
		{
			name: "the controller and discoverd, from the manifest's variables",
			env:  map[string]string{"FLYNN_CONTROLLER_URL": "http://127.0.0.1:1114", "FLYNN_CONTROLLER_KEY": "ck", "FLYNN_CLUSTER_KEY": "k", "FLYNN_HTTP_ADDR": ":8080"},
			check: func(t *testing.T, cfg Config) {
				if cfg.Routes == nil || cfg.Backends == nil || cfg.Server.HTTPAddr != ":8080" || cfg.Server.HTTPSAddr != ":443" {
					t.Errorf("config = %+v", cfg)
				}
			},
		},
		{
			name: "the names of the release before",
			env:  map[string]string{"CONTROLLER_URL": "http://127.0.0.1:1114", "CONTROLLER_KEY": "ck", "DISCOVERD_KEY": "k", "ROUTER_HTTP_ADDR": ":8081"},
			check: func(t *testing.T, cfg Config) {
				if cfg.Routes == nil || cfg.Server.HTTPAddr != ":8081" {
					t.Errorf("config = %+v", cfg)
				}
			},
		},
		{
			name: "a static file",
			args: []string{"--static-config", static, "--https-addr", ""},
			check: func(t *testing.T, cfg Config) {
				if cfg.Routes == nil || cfg.Server.HTTPSAddr != "" {
					t.Errorf("config = %+v", cfg)
				}
			},
		},
		{name: "no source", fails: "either --controller-url or --static-config is required"},
		{name: "a missing certificate", args: []string{"--static-config", static, "--tls-cert", "/nope"}, fails: "--tls-cert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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
			code := cmdline.Execute(t.Context(), d.App(), append([]string{"flynn-router"}, tt.args...), &out)
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
