package server_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/openflynn/flynn/discoverd/server"
	"github.com/openflynn/flynn/pkg/cmdline/cmdlinetest"
)

// On a node (FLYNN_EXTERNAL_IP), discoverd and its etcd listen on the
// node's address unless told otherwise.
func TestDaemonAddresses(t *testing.T) {
	hostname, _ := os.Hostname()
	cmd := cmdlinetest.Command[server.Config]{
		Daemon: server.Daemon,
		Env:    map[string]string{"FLYNN_CLUSTER_KEY": "k"},
		Unset:  []string{"FLYNN_EXTERNAL_IP", "FLYNN_HOST_ID", "FLYNN_JOIN", "FLYNN_HTTP_ADDR", "DISCOVERD_HTTP_ADDR"},
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want server.Config
	}{
		{
			name: "no node address",
			want: server.Config{HTTPAddr: ":1111", EtcdClientAddr: "127.0.0.1:2379", EtcdPeerAddr: "127.0.0.1:2380", Name: hostname},
		},
		{
			name: "node address",
			env:  map[string]string{"FLYNN_EXTERNAL_IP": "10.0.0.2", "FLYNN_HOST_ID": "host2", "FLYNN_JOIN": "http://10.0.0.1:1111,http://10.0.0.3:1111"},
			want: server.Config{HTTPAddr: "10.0.0.2:1111", EtcdClientAddr: "10.0.0.2:1121", EtcdPeerAddr: "10.0.0.2:1122", Name: "host2", Join: []string{"http://10.0.0.1:1111", "http://10.0.0.3:1111"}},
		},
		{
			name: "flags given win",
			env:  map[string]string{"FLYNN_EXTERNAL_IP": "10.0.0.2"},
			args: []string{"--http-addr", ":1111", "--etcd-client-addr", "127.0.0.1:1121", "--etcd-peer-addr", "127.0.0.1:1122", "--host-id", "h", "--join", "10.0.0.1"},
			want: server.Config{HTTPAddr: ":1111", EtcdClientAddr: "127.0.0.1:1121", EtcdPeerAddr: "127.0.0.1:1122", Name: "h", Join: []string{"10.0.0.1"}},
		},
		{
			name: "IPv6 node address",
			env:  map[string]string{"FLYNN_EXTERNAL_IP": "fd00::2"},
			want: server.Config{HTTPAddr: "[fd00::2]:1111", EtcdClientAddr: "[fd00::2]:1121", EtcdPeerAddr: "[fd00::2]:1122", Name: hostname},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cmd.Accepted(t, tt.env, tt.args...)
			if got.HTTPAddr != tt.want.HTTPAddr || got.EtcdClientAddr != tt.want.EtcdClientAddr || got.EtcdPeerAddr != tt.want.EtcdPeerAddr ||
				got.Name != tt.want.Name || !slices.Equal(got.Join, tt.want.Join) {
				t.Errorf("config: http %s, etcd %s %s, name %s, join %v; want http %s, etcd %s %s, name %s, join %v",
					got.HTTPAddr, got.EtcdClientAddr, got.EtcdPeerAddr, got.Name, got.Join,
					tt.want.HTTPAddr, tt.want.EtcdClientAddr, tt.want.EtcdPeerAddr, tt.want.Name, tt.want.Join)
			}
		})
	}
}

// TestDaemonRequiresKey: without the cluster key discoverd's writes would
// be open to everyone, so it starts only when told so with --insecure.
func TestDaemonRequiresKey(t *testing.T) {
	cmd := cmdlinetest.Command[server.Config]{Daemon: server.Daemon, Args: []string{"--data-dir", t.TempDir()}, Unset: []string{"FLYNN_CLUSTER_KEY"}}
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantKey  string
		output   string
	}{
		{name: "no key", wantCode: 2, output: "pass --insecure"},
		{name: "no key, --insecure", args: []string{"--insecure"}, output: "RUNNING WITHOUT A KEY"},
		{name: "a key", env: map[string]string{"FLYNN_CLUSTER_KEY": "k"}, wantKey: "k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cmd.Parse(t, tt.env, tt.args...)
			if r.Code != tt.wantCode || r.Ran != (r.Code == 0) || r.Config.AuthKey != tt.wantKey || !strings.Contains(r.Output, tt.output) {
				t.Fatalf("exit %d, ran %v with key %q, output %q; want exit %d, key %q, output with %q",
					r.Code, r.Ran, r.Config.AuthKey, r.Output, tt.wantCode, tt.wantKey, tt.output)
			}
		})
	}
}
