package gitreceive

import (
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/cmdline/cmdlinetest"
)

// TestCommandLineBounds checks the flags that bound builds: their
// defaults, their units, and what they refuse.
func TestCommandLineBounds(t *testing.T) {
	type bounds struct {
		memory, pids, disk int64
		timeout            time.Duration
		builds             int
		pushSize           int64
		release            time.Duration
	}
	cmd := cmdlinetest.Command[Config]{
		Daemon: Daemon,
		Args:   []string{"--controller-url", "http://c", "--slugbuilder-image", "b", "--slugrunner-image", "r", "--state-dir", t.TempDir()},
		Env:    map[string]string{"PORT": "", "FLYNN_CONTROLLER_KEY": "k"},
	}
	tests := []struct {
		name  string
		args  []string
		want  bounds
		fails string
	}{
		{name: "defaults", want: bounds{DefaultBuildMemory, DefaultBuildPids, DefaultBuildDisk, DefaultBuildTimeout, DefaultMaxBuilds, DefaultMaxPushSize, DefaultReleaseTimeout}},
		{
			name: "set",
			args: []string{"--build-memory", "1GiB", "--build-pids", "256", "--build-disk", "5GiB", "--build-timeout", "20m", "--max-builds", "4", "--max-push-size", "200MiB", "--release-timeout", "3m"},
			want: bounds{1 << 30, 256, 5 << 30, 20 * time.Minute, 4, 200 << 20, 3 * time.Minute},
		},
		{name: "no builds", args: []string{"--max-builds", "0"}, fails: "--max-builds must be at least 1"},
		{name: "no processes", args: []string{"--build-pids", "-1"}, fails: "--build-pids must be at least 1"},
		{name: "disk not a size", args: []string{"--build-disk", "lots"}, fails: "want bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fails != "" {
				cmd.Refused(t, nil, tt.fails, tt.args...)
				return
			}
			got := cmd.Accepted(t, nil, tt.args...)
			have := bounds{got.BuildMemory, got.BuildPids, got.BuildDisk, got.BuildTimeout, got.MaxBuilds, got.MaxPushSize, got.ReleaseTimeout}
			if have != tt.want {
				t.Fatalf("bounds = %+v, want %+v", have, tt.want)
			}
		})
	}
}

// TestCommandLineDiscoverd checks when controller calls go through
// discoverd: with --discoverd-url, or in a job (the node's discoverd).
func TestCommandLineDiscoverd(t *testing.T) {
	cmd := cmdlinetest.Command[Config]{
		Daemon: Daemon,
		Args:   []string{"--controller-url", "http://controller.discoverd", "--slugbuilder-image", "b", "--slugrunner-image", "r", "--state-dir", t.TempDir()},
		Env:    map[string]string{"PORT": "", "FLYNN_CONTROLLER_KEY": "k"},
	}
	tests := []struct {
		name    string
		env     map[string]string
		through bool
	}{
		{name: "outside a job", env: map[string]string{}},
		{name: "a discoverd URL", env: map[string]string{"FLYNN_DISCOVERD_URL": "http://10.0.0.2:1111"}, through: true},
		{name: "a job's node", env: map[string]string{"FLYNN_EXTERNAL_IP": "10.0.0.2"}, through: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cmd.Accepted(t, tt.env)
			if (got.HTTPClient != nil) != tt.through {
				t.Errorf("HTTPClient = %v, want one through discoverd: %v", got.HTTPClient, tt.through)
			}
		})
	}
}

// TestCommandLineRequiresKey: without the controller key gitreceive works
// only with a controller that admits everyone, so it starts only when told
// so with --insecure.
func TestCommandLineRequiresKey(t *testing.T) {
	cmd := cmdlinetest.Command[Config]{
		Daemon: Daemon,
		Args:   []string{"--controller-url", "http://c", "--slugbuilder-image", "b", "--slugrunner-image", "r", "--state-dir", t.TempDir()},
		Env:    map[string]string{"PORT": ""},
	}
	tests := []struct {
		name     string
		args     []string
		key      string
		wantCode int
		output   string
	}{
		{name: "no key", wantCode: 2, output: "pass --insecure"},
		{name: "no key, --insecure", args: []string{"--insecure"}, output: "RUNNING WITHOUT A KEY"},
		{name: "a key", key: "k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cmd.Parse(t, map[string]string{"FLYNN_CONTROLLER_KEY": tt.key}, tt.args...)
			if r.Code != tt.wantCode || r.Ran != (r.Code == 0) || r.Config.ControllerKey != tt.key || !strings.Contains(r.Output, tt.output) {
				t.Fatalf("exit %d, ran %v with key %q, output %q; want exit %d, key %q, output with %q",
					r.Code, r.Ran, r.Config.ControllerKey, r.Output, tt.wantCode, tt.key, tt.output)
			}
		})
	}
}

// TestCommandLineMetricsAddr: metrics are served where --metrics-addr
// says, or in a job on its second port at the node's address; outside a
// job without the flag, nowhere.
func TestCommandLineMetricsAddr(t *testing.T) {
	cmd := cmdlinetest.Command[Config]{
		Daemon: Daemon,
		Args:   []string{"--controller-url", "http://c", "--slugbuilder-image", "b", "--slugrunner-image", "r", "--state-dir", t.TempDir()},
		Env:    map[string]string{"FLYNN_CONTROLLER_KEY": "k"},
		Unset:  []string{"PORT", "PORT_1", "FLYNN_EXTERNAL_IP", "EXTERNAL_IP", "FLYNN_METRICS_ADDR"},
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "outside a job", want: ""},
		{name: "a job", env: map[string]string{"PORT": "5000", "PORT_1": "5001", "FLYNN_EXTERNAL_IP": "10.0.0.2"}, want: "10.0.0.2:5001"},
		{name: "a job, IPv6", env: map[string]string{"PORT_1": "5001", "FLYNN_EXTERNAL_IP": "fd00::2"}, want: "[fd00::2]:5001"},
		{name: "a job without a second port", env: map[string]string{"PORT": "5000", "FLYNN_EXTERNAL_IP": "10.0.0.2"}, want: ""},
		{name: "the flag wins", env: map[string]string{"PORT_1": "5001"}, args: []string{"--metrics-addr", "127.0.0.1:9200"}, want: "127.0.0.1:9200"},
		{name: "off in a job", env: map[string]string{"PORT_1": "5001"}, args: []string{"--metrics-addr", ""}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cmd.Accepted(t, tt.env, tt.args...).MetricsAddr; got != tt.want {
				t.Errorf("MetricsAddr = %q, want %q", got, tt.want)
			}
		})
	}
}
