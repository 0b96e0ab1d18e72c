package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/cmdline/cmdlinetest"
)

func TestCommandLine(t *testing.T) {
	cmd := cmdlinetest.Command[Config]{
		Daemon: Daemon,
		Args:   []string{"--state-dir", t.TempDir(), "--host-id", "h1"},
		Env:    map[string]string{"FLYNN_CLUSTER_KEY": "k"}, // unless a case says otherwise
	}
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
		{
			name: "the cluster key",
			check: func(t *testing.T, cfg Config) {
				if cfg.ClusterKey != "k" {
					t.Errorf("cluster key = %q, want k", cfg.ClusterKey)
				}
			},
		},
		// Without a key the host API would admit everyone.
		{name: "no cluster key", env: map[string]string{"FLYNN_CLUSTER_KEY": ""}, fails: "pass --insecure"},
		{
			name: "no cluster key, --insecure",
			args: []string{"--insecure"},
			env:  map[string]string{"FLYNN_CLUSTER_KEY": ""},
			check: func(t *testing.T, cfg Config) {
				if cfg.ClusterKey != "" {
					t.Errorf("cluster key = %q, want none", cfg.ClusterKey)
				}
			},
		},
		{
			// The host API never listens on every interface by default,
			// not even when the flag is given empty.
			name: "an empty listen address is the node's",
			args: []string{"--external-ip", "10.0.0.5", "--http-addr", ""},
			check: func(t *testing.T, cfg Config) {
				if cfg.Listen != "10.0.0.5:1113" {
					t.Errorf("listen = %q, want 10.0.0.5:1113", cfg.Listen)
				}
			},
		},
		{
			name: "every interface when asked",
			args: []string{"--http-addr", ":1113"},
			check: func(t *testing.T, cfg Config) {
				if cfg.Listen != ":1113" {
					t.Errorf("listen = %q, want :1113", cfg.Listen)
				}
			},
		},
	}
	tests = append(tests, nodeTests...)
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

// nodeTests: one flag sets a node of several on one machine apart; any
// flag given still wins.
var nodeTests = []struct {
	name  string
	args  []string
	env   map[string]string
	check func(t *testing.T, cfg Config)
	fails string
}{
	{
		name: "node 1",
		args: []string{"--discoverd-url", "http://127.0.0.1:1111"},
		check: func(t *testing.T, cfg Config) {
			d := cfg.Daemon
			got := fmt.Sprint(cfg.Listen, d.ExternalIP, d.PortMin, d.PortMax, d.AppNetwork, d.AppBridge, d.FirewallChain, cfg.DiscoverdURLs)
			want := fmt.Sprint("127.0.0.1:1113", "127.0.0.1", 55000, 55999, "flynn-apps", "flynnapps0", "FLYNN-APPS", []string{"http://127.0.0.1:1111"})
			if got != want {
				t.Errorf("config = %s, want %s", got, want)
			}
		},
	},
	{
		name: "node 3",
		args: []string{"--node", "3", "--discoverd-url", "http://127.0.0.3:1111,http://127.0.0.1:1111"},
		check: func(t *testing.T, cfg Config) {
			d := cfg.Daemon
			got := fmt.Sprint(cfg.Listen, d.ExternalIP, d.PortMin, d.PortMax, d.AppNetwork, d.AppBridge, d.FirewallChain, cfg.DiscoverdURLs)
			want := fmt.Sprint("127.0.0.3:1113", "127.0.0.3", 57000, 57999, "flynn-apps-3", "flynnapps-3", "FLYNN-APPS-3",
				[]string{"http://127.0.0.3:1111", "http://127.0.0.1:1111"})
			if got != want {
				t.Errorf("config = %s, want %s", got, want)
			}
		},
	},
	{
		name: "node 2 from the environment, flags win",
		args: []string{"--external-ip", "10.0.0.2", "--app-bridge", "br2"},
		env:  map[string]string{"FLYNN_NODE": "2", "FLYNN_DISCOVERD_URL": "http://10.0.0.2:1111,http://10.0.0.1:1111"},
		check: func(t *testing.T, cfg Config) {
			d := cfg.Daemon
			got := fmt.Sprint(cfg.Listen, d.ExternalIP, d.PortMin, d.AppNetwork, d.AppBridge, len(cfg.DiscoverdURLs))
			want := fmt.Sprint("10.0.0.2:1113", "10.0.0.2", 56000, "flynn-apps-2", "br2", 2)
			if got != want {
				t.Errorf("config = %s, want %s", got, want)
			}
		},
	},
	{name: "node out of range", args: []string{"--node", "11"}, fails: "--node"},
}

func TestNodeDefaults(t *testing.T) {
	tests := []struct {
		n       int
		want    Node
		wantErr bool
	}{
		{n: 1, want: Node{N: 1, ExternalIP: "127.0.0.1", StateDir: "/var/lib/flynn", PortMin: 55000, PortMax: 55999,
			AppNetwork: "flynn-apps", AppBridge: "flynnapps0", FirewallChain: "FLYNN-APPS"}},
		{n: 2, want: Node{N: 2, ExternalIP: "127.0.0.2", StateDir: "/var/lib/flynn/node-2", PortMin: 56000, PortMax: 56999,
			AppNetwork: "flynn-apps-2", AppBridge: "flynnapps-2", FirewallChain: "FLYNN-APPS-2"}},
		{n: 10, want: Node{N: 10, ExternalIP: "127.0.0.10", StateDir: "/var/lib/flynn/node-10", PortMin: 64000, PortMax: 64999,
			AppNetwork: "flynn-apps-10", AppBridge: "flynnapps-10", FirewallChain: "FLYNN-APPS-10"}},
		{n: 0, wantErr: true},
		{n: 11, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("node ", tt.n), func(t *testing.T) {
			got, err := NodeDefaults(tt.n)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NodeDefaults(%d) error = %v, want error %v", tt.n, err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("NodeDefaults(%d) = %+v, want %+v", tt.n, got, tt.want)
			}
		})
	}
}
