package schedulerd

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/cmdline/cmdlinetest"
	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/metrics/metricstest"
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

// TestRunServesMetrics: Run serves the scheduler's metrics on MetricsAddr,
// to the cluster key only, while it waits for discoverd (here one that
// never answers), until ctx ends.
func TestRunServesMetrics(t *testing.T) {
	discoverd := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer discoverd.Close()
	cfg := Config{DiscoverdURL: discoverd.URL, ControllerURL: "http://127.0.0.1:1", ClusterKey: "k", Addr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0"}
	logs := make(logLines, 100)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- Run(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil))) }()

	var base string
	addr := regexp.MustCompile(`msg="serving metrics" addr=(\S+)`)
	deadline := time.After(10 * time.Second)
	for base == "" {
		select {
		case <-deadline:
			t.Fatal("Run logged no metrics address in 10s")
		case l := <-logs:
			if m := addr.FindStringSubmatch(l); m != nil {
				base = "http://" + m[1]
			}
		case err := <-ran:
			t.Fatalf("Run returned before serving metrics: %v", err)
		}
	}
	if code := metricstest.Status(t, base+metrics.Path, ""); code != http.StatusUnauthorized {
		t.Errorf("metrics without the key: %d, want 401", code)
	}
	scraped := metricstest.Get(t, base+metrics.Path, "k")
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
		if !scraped.Has(name) {
			t.Errorf("no %s", name)
		}
	}

	cancel()
	if err := <-ran; !errors.Is(err, context.Canceled) {
		t.Errorf("Run after ctx ended: %v, want context.Canceled", err)
	}
}

// logLines hands each line a logger writes to the test, dropping those
// it has no room for.
type logLines chan string

func (l logLines) Write(p []byte) (int, error) {
	select {
	case l <- string(p):
	default:
	}
	return len(p), nil
}
