package schedulerd

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/openflynn/flynn/pkg/cmdline"
)

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		want  Config
		fails string
	}{
		{
			name: "a Flynn job's environment",
			env:  map[string]string{"PORT": "", "FLYNN_CONTROLLER_URL": "http://c", "FLYNN_CLUSTER_KEY": "k", "FLYNN_DISCOVERD_URL": "http://d", "FLYNN_EXTERNAL_IP": "10.0.0.2"},
			want: Config{DiscoverdURL: "http://d", ControllerURL: "http://c", ControllerKey: "k", ClusterKey: "k", Addr: "10.0.0.2:0"},
		},
		{
			// Until flynn-host gives every job FLYNN_DISCOVERD_URL: the
			// discoverd of the job's node.
			name: "a job without a discoverd URL",
			env:  map[string]string{"PORT": "", "FLYNN_CONTROLLER_URL": "http://controller.discoverd", "FLYNN_CLUSTER_KEY": "k", "FLYNN_EXTERNAL_IP": "10.0.0.2"},
			want: Config{DiscoverdURL: "http://10.0.0.2:1111", ControllerURL: "http://controller.discoverd", ControllerKey: "k", ClusterKey: "k", Addr: "10.0.0.2:0"},
		},
		{
			name: "the names of the release before",
			env:  map[string]string{"PORT": "7", "CONTROLLER_URL": "http://c", "FLYNN_AUTH_KEY": "k", "DISCOVERD": "http://d", "EXTERNAL_IP": "10.0.0.3"},
			want: Config{DiscoverdURL: "http://d", ControllerURL: "http://c", ControllerKey: "k", ClusterKey: "k", Addr: "10.0.0.3:7"},
		},
		{name: "no controller", env: map[string]string{"PORT": ""}, fails: "a controller URL is required"},
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
			code := cmdline.Execute(t.Context(), d.App(), []string{"flynn-scheduler"}, &out)
			if tt.fails != "" {
				if code != 2 || !strings.Contains(out.String(), tt.fails) {
					t.Fatalf("exit %d, output %q; want 2 and %q", code, out.String(), tt.fails)
				}
				return
			}
			if code != 0 || got != tt.want {
				t.Fatalf("exit %d, config %+v; want %+v (%s)", code, got, tt.want, out.String())
			}
		})
	}
}
