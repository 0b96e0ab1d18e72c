package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/openflynn/flynn/controller"
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

	req := mustRequest(t, "GET", base+"/metrics")
	req.SetBasicAuth("", key)
	_, body := do(t, tr.client, req)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "flynn_router_unmatched_requests_total", "flynn_router_request_duration_seconds"} {
		if families[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	value := func(name string, labels map[string]string) float64 {
		for _, m := range families[name].GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			match := true
			for k, v := range labels {
				match = match && have[k] == v
			}
			if match {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		return -1
	}
	if got := value("flynn_router_requests_total", map[string]string{"route": "m", "status": "2xx", "target": "m.test/", "service": "svc-m"}); got < 3 {
		t.Errorf("flynn_router_requests_total{route=m,status=2xx} = %v, want at least 3", got)
	}
	if got := value("flynn_router_backends", map[string]string{"route": "m"}); got != 2 {
		t.Errorf("flynn_router_backends{route=m} = %v, want 2", got)
	}
}
