package schedulerd

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/openflynn/flynn/controller/scheduler"
	"github.com/openflynn/flynn/pkg/cmdline/cmdlinetest"
	"github.com/openflynn/flynn/pkg/metrics"
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
			// flynn-host gives PORT and PORT_0 the job's first port: its
			// metrics port, at which it also registers for leadership.
			name: "a job with a port",
			env:  map[string]string{"PORT": "4000", "PORT_0": "4000", "FLYNN_CONTROLLER_URL": "http://c", "FLYNN_CLUSTER_KEY": "k", "FLYNN_EXTERNAL_IP": "10.0.0.2"},
			want: Config{DiscoverdURL: "http://10.0.0.2:1111", ControllerURL: "http://c", ControllerKey: "k", ClusterKey: "k", Addr: "10.0.0.2:4000", MetricsAddr: "10.0.0.2:4000"},
		},
		{
			name: "metrics turned off in a job",
			env:  map[string]string{"PORT": "4000", "PORT_0": "4000", "FLYNN_CONTROLLER_URL": "http://c", "FLYNN_CLUSTER_KEY": "k", "FLYNN_EXTERNAL_IP": "10.0.0.2", "FLYNN_METRICS_ADDR": ""},
			want: Config{DiscoverdURL: "http://10.0.0.2:1111", ControllerURL: "http://c", ControllerKey: "k", ClusterKey: "k", Addr: "10.0.0.2:4000"},
		},
		{
			name: "metrics outside a job",
			env:  map[string]string{"PORT": "", "PORT_0": "", "FLYNN_CONTROLLER_URL": "http://c", "FLYNN_CLUSTER_KEY": "k", "FLYNN_METRICS_ADDR": "127.0.0.1:9090"},
			want: Config{DiscoverdURL: "http://127.0.0.1:1111", ControllerURL: "http://c", ControllerKey: "k", ClusterKey: "k", Addr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:9090"},
		},
		{
			name: "the names of the release before",
			env:  map[string]string{"PORT": "7", "CONTROLLER_URL": "http://c", "FLYNN_AUTH_KEY": "k", "DISCOVERD": "http://d", "EXTERNAL_IP": "10.0.0.3"},
			want: Config{DiscoverdURL: "http://d", ControllerURL: "http://c", ControllerKey: "k", ClusterKey: "k", Addr: "10.0.0.3:7"},
		},
		{name: "no controller", env: map[string]string{"PORT": ""}, fails: "a controller URL is required"},
	}
	cmd := cmdlinetest.Command[Config]{Daemon: Daemon, Unset: []string{"PORT_0", "FLYNN_METRICS_ADDR"}}
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

// TestServeMetrics checks the scheduler's metrics listener: /metrics to
// the cluster key only, in Prometheus's text format, with the scheduler's
// series (controller/scheduler's tests check what they count).
func TestServeMetrics(t *testing.T) {
	reg := metrics.NewRegistry()
	scheduler.NewMetrics(reg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- serveMetrics(ctx, ln, metrics.Handler(reg, "k")) }()
	url := "http://" + ln.Addr().String()

	get := func(path, key string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url+path, nil)
		if key != "" {
			req.SetBasicAuth("", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	tests := []struct {
		name, path, key string
		want            int
	}{
		{"no key", metrics.Path, "", http.StatusUnauthorized},
		{"a wrong key", metrics.Path, "guess", http.StatusUnauthorized},
		{"the cluster key", metrics.Path, "k", http.StatusOK},
		{"anything else", "/", "k", http.StatusNotFound},
	}
	for _, tt := range tests {
		if got := get(tt.path, tt.key).StatusCode; got != tt.want {
			t.Errorf("%s: GET %s: %d, want %d", tt.name, tt.path, got, tt.want)
		}
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(get(metrics.Path, "k").Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	for _, name := range []string{
		"go_goroutines",
		"flynn_scheduler_rounds_total",
		"flynn_scheduler_round_duration_seconds",
		"flynn_scheduler_jobs_started_total",
		"flynn_scheduler_jobs_stopped_total",
		"flynn_scheduler_job_start_failures_total",
		"flynn_scheduler_deployments_total",
		"flynn_scheduler_is_leader",
	} {
		if families[name] == nil {
			t.Errorf("no %s", name)
		}
	}

	cancel()
	if err := <-served; err != nil {
		t.Errorf("serveMetrics: %v", err)
	}
}
