package routerd

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/cmdline/cmdlinetest"
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
			name: "outside a job: every interface",
			env:  map[string]string{"PORT": "", "FLYNN_CONTROLLER_URL": "http://127.0.0.1:1114", "FLYNN_CONTROLLER_KEY": "ck", "FLYNN_CLUSTER_KEY": "k", "FLYNN_HTTP_ADDR": ":8080"},
			check: func(t *testing.T, cfg Config) {
				s := cfg.Server
				if cfg.Routes == nil || cfg.Backends == nil || !slices.Equal(s.HTTPAddrs, []string{":8080"}) || !slices.Equal(s.HTTPSAddrs, []string{":443"}) ||
					len(s.TCPHosts) != 0 || s.MetricsAddr != "127.0.0.1:9100" || s.MetricsKey != "k" || !s.ReusePort {
					t.Errorf("config = %+v", s)
				}
			},
		},
		{
			name: "a job on a node: its address and app gateway",
			env: map[string]string{"PORT": "55010", "PORT_0": "55010", "FLYNN_CONTROLLER_URL": "http://controller.discoverd", "FLYNN_CONTROLLER_KEY": "ck", "FLYNN_CLUSTER_KEY": "k",
				"FLYNN_EXTERNAL_IP": "10.0.0.2", "FLYNN_APP_GATEWAY": "172.20.0.1", "FLYNN_JOB_ID": "host1-job1", "FLYNN_HOST_ID": "host1"},
			check: func(t *testing.T, cfg Config) {
				s := cfg.Server
				if !slices.Equal(s.HTTPAddrs, []string{"10.0.0.2:80", "172.20.0.1:80"}) || !slices.Equal(s.HTTPSAddrs, []string{"10.0.0.2:443", "172.20.0.1:443"}) ||
					!slices.Equal(s.TCPHosts, []string{"10.0.0.2", "172.20.0.1"}) || s.MetricsAddr != "10.0.0.2:55010" || !s.ReusePort ||
					s.JobID != "host1-job1" || s.HostID != "host1" {
					t.Errorf("config = %+v", s)
				}
			},
		},
		{
			name: "a job on a node without an app network",
			env:  map[string]string{"PORT": "55010", "PORT_0": "55010", "FLYNN_CONTROLLER_URL": "http://controller.discoverd", "FLYNN_CONTROLLER_KEY": "ck", "FLYNN_EXTERNAL_IP": "10.0.0.2", "FLYNN_TCP_HOST": ""},
			check: func(t *testing.T, cfg Config) {
				s := cfg.Server
				if !slices.Equal(s.HTTPAddrs, []string{"10.0.0.2:80"}) || !slices.Equal(s.TCPHosts, []string{""}) {
					t.Errorf("config = %+v", s)
				}
			},
		},
		{
			name: "the names of the release before",
			env:  map[string]string{"CONTROLLER_URL": "http://127.0.0.1:1114", "CONTROLLER_KEY": "ck", "DISCOVERD_KEY": "k", "ROUTER_HTTP_ADDR": ":8081"},
			check: func(t *testing.T, cfg Config) {
				if cfg.Routes == nil || !slices.Equal(cfg.Server.HTTPAddrs, []string{":8081"}) || cfg.Server.MetricsKey != "k" {
					t.Errorf("config = %+v", cfg)
				}
			},
		},
		{
			name: "a static file with the cluster key",
			args: []string{"--static-config", static},
			env:  map[string]string{"FLYNN_CLUSTER_KEY": "k"},
			check: func(t *testing.T, cfg Config) {
				if cfg.Server.MetricsKey != "k" {
					t.Errorf("metrics key = %q, want the cluster key", cfg.Server.MetricsKey)
				}
			},
		},
		{
			name: "a static file",
			args: []string{"--static-config", static, "--https-addr", ""},
			check: func(t *testing.T, cfg Config) {
				if cfg.Routes == nil || len(cfg.Server.HTTPSAddrs) != 0 {
					t.Errorf("config = %+v", cfg)
				}
			},
		},
		{
			name: "timeouts and TCP limits: defaults",
			args: []string{"--static-config", static},
			check: func(t *testing.T, cfg Config) {
				s := cfg.Server
				if s.BodyReadTimeout != time.Minute || s.TCPIdleTimeout != 10*time.Minute || s.MaxTCPConns != 20000 || s.MaxTCPConnsPerRoute != 5000 {
					t.Errorf("config = %+v", s)
				}
			},
		},
		{
			name: "timeouts and TCP limits: set",
			args: []string{"--static-config", static, "--body-read-timeout", "5s", "--tcp-idle-timeout", "1h", "--max-tcp-conns", "100", "--max-tcp-conns-per-route", "10"},
			check: func(t *testing.T, cfg Config) {
				s := cfg.Server
				if s.BodyReadTimeout != 5*time.Second || s.TCPIdleTimeout != time.Hour || s.MaxTCPConns != 100 || s.MaxTCPConnsPerRoute != 10 {
					t.Errorf("config = %+v", s)
				}
			},
		},
		{name: "no source", fails: "either --controller-url or --static-config is required"},
		// Following a controller needs its key, unless the router is told
		// to run without one; a static file needs none.
		{name: "a controller without its key", env: map[string]string{"FLYNN_CONTROLLER_URL": "http://controller.discoverd"}, fails: "pass --insecure"},
		{
			name: "a controller without its key, --insecure",
			args: []string{"--insecure"},
			env:  map[string]string{"FLYNN_CONTROLLER_URL": "http://controller.discoverd"},
			check: func(t *testing.T, cfg Config) {
				if cfg.Routes == nil {
					t.Errorf("config = %+v, want routes from the controller", cfg)
				}
			},
		},
		{name: "a missing certificate", args: []string{"--static-config", static, "--tls-cert", "/nope"}, fails: "--tls-cert"},
	}
	cmd := cmdlinetest.Command[Config]{Daemon: Daemon, Unset: []string{"PORT_0"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fails != "" {
				cmd.Refused(t, tt.env, tt.fails, tt.args...)
				return
			}
			tt.check(t, cmd.Accepted(t, tt.env, tt.args...))
		})
	}
}
