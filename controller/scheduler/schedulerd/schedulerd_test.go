package schedulerd

import (
	"testing"

	"github.com/openflynn/flynn/pkg/cmdline/cmdlinetest"
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
	cmd := cmdlinetest.Command[Config]{Daemon: Daemon}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fails != "" {
				cmd.Refused(t, tt.env, tt.fails)
				return
			}
			if got := cmd.Accepted(t, tt.env); got != tt.want {
				t.Fatalf("config %+v; want %+v", got, tt.want)
			}
		})
	}
}
