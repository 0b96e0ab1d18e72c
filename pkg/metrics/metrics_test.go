package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/metrics/metricstest"
)

func TestHTTPMetrics(t *testing.T) {
	reg := metrics.NewRegistry()
	m := metrics.NewHTTP(reg, "flynn_test")
	r := m.Router()
	r.GET("/apps/:id", func(w http.ResponseWriter, _ *http.Request, ps httprouter.Params) {
		if ps.ByName("id") == "missing" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		io.WriteString(w, "ok")
	})
	r.GET("/stream", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("a route's writer is no http.Flusher")
		}
	})
	r.GET("/panics", func(http.ResponseWriter, *http.Request, httprouter.Params) { panic("bad") })
	r.PanicHandler = func(w http.ResponseWriter, _ *http.Request, _ any) { w.WriteHeader(http.StatusInternalServerError) }
	r.Handler(http.MethodGet, metrics.Path, metrics.Handler(reg, "s3cret"))
	srv := httptest.NewServer(m.Wrap(r))
	defer srv.Close()

	for _, path := range []string{"/apps/a", "/apps/b", "/apps/missing", "/nowhere", "/stream", "/panics"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if code := metricstest.Status(t, srv.URL+metrics.Path, ""); code != http.StatusUnauthorized {
		t.Fatalf("metrics without the key: %d, want 401", code)
	}
	scraped := metricstest.Get(t, srv.URL+metrics.Path, "s3cret")
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "flynn_test_http_request_duration_seconds"} {
		if !scraped.Has(name) {
			t.Errorf("no %s", name)
		}
	}
	tests := []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"code": "200", "method": "GET", "route": "/apps/:id"}, 2},
		{map[string]string{"code": "404", "method": "GET", "route": "/apps/:id"}, 1},
		{map[string]string{"code": "404", "method": "GET", "route": "unmatched"}, 1},
		{map[string]string{"code": "200", "method": "GET", "route": "/stream"}, 1},
		{map[string]string{"code": "401", "method": "GET", "route": "/metrics"}, 1},
	}
	for _, tt := range tests {
		if got, _ := scraped.Find("flynn_test_http_requests_total", tt.labels); got.Value != tt.want {
			t.Errorf("requests%v = %v, want %v (all: %v)", tt.labels, got.Value, tt.want, scraped["flynn_test_http_requests_total"])
		}
	}
}
