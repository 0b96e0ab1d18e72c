package server

import (
	"net/http"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/metrics/metricstest"
)

// TestMetricsNeedTheKey: with a key, /metrics answers only requests that
// carry it, while /health stays open for the health checks; what it
// serves parses as Prometheus reads it, with the Go and process
// collectors beside the router's own series.
func TestMetricsNeedTheKey(t *testing.T) {
	const key = "s3cret"
	tr := startRouter(t, Config{MetricsKey: key})
	tr.addHTTPRoute(t, &controller.Route{ID: "m", Domain: "m.test"}, namedBackend(t, "m1"), namedBackend(t, "m2"))
	for i := 0; i < 3; i++ {
		tr.get(t, "m.test", "/")
	}
	base := "http://" + tr.MetricsAddr().String()
	tests := []struct {
		name, path, key string
		want            int
	}{
		{"metrics without the key", "/metrics", "", http.StatusUnauthorized},
		{"metrics with a wrong key", "/metrics", "guess", http.StatusUnauthorized},
		{"metrics with the key", "/metrics", key, http.StatusOK},
		{"health without a key", "/health", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := mustRequest(t, "GET", base+tt.path)
			if tt.key != "" {
				req.SetBasicAuth("", tt.key)
			}
			if resp, body := do(t, tr.client, req); resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
		})
	}

	scraped := metricstest.Get(t, base+"/metrics", key)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "flynn_router_unmatched_requests_total", "flynn_router_request_duration_seconds"} {
		if !scraped.Has(name) {
			t.Errorf("no %s", name)
		}
	}
	if got, ok := scraped.Find("flynn_router_requests_total", map[string]string{"route": "m", "status": "2xx", "target": "m.test/", "service": "svc-m"}); !ok || got.Value < 3 {
		t.Errorf("flynn_router_requests_total{route=m,status=2xx} = %v (found %v), want at least 3", got.Value, ok)
	}
	if got, ok := scraped.Find("flynn_router_backends", map[string]string{"route": "m"}); !ok || got.Value != 2 {
		t.Errorf("flynn_router_backends{route=m} = %v (found %v), want 2", got.Value, ok)
	}
}
