package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/blobstore/fs"
	"github.com/openflynn/flynn/blobstore/signed"
	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/metrics/metricstest"
)

// TestMetrics moves a blob in and out, then reads the metrics as
// Prometheus would: only with the key, never with a signed URL.
func TestMetrics(t *testing.T) {
	backend, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(backend, Options{AuthKey: "k"}, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	do := func(method, target, key, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+target, strings.NewReader(body))
		if key != "" {
			req.SetBasicAuth("", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const blob = "a slug of 21 bytes..."
	steps := []struct {
		method, target, key, body string
		want                      int
	}{
		{http.MethodPut, "/apps/x/slug.tgz", "k", blob, http.StatusOK},
		{http.MethodGet, "/apps/x/slug.tgz", "k", "", http.StatusOK},
		{http.MethodGet, "/apps/x/missing.tgz", "k", "", http.StatusNotFound},
		{http.MethodGet, "/?prefix=apps/", "k", "", http.StatusOK},
		{http.MethodPost, "/apps/x/slug.tgz", "k", "", http.StatusMethodNotAllowed},
		// No blob may hide behind the metrics.
		{http.MethodPut, metrics.Path, "k", blob, http.StatusBadRequest},
	}
	for _, s := range steps {
		if got, body := do(s.method, s.target, s.key, s.body); got != s.want {
			t.Fatalf("%s %s: %d %s, want %d", s.method, s.target, got, body, s.want)
		}
	}
	signedURL, err := signed.URL("", "k", http.MethodGet, metrics.Path, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct{ name, target, key string }{
		{"no key", metrics.Path, ""},
		{"a wrong key", metrics.Path, "guess"},
		{"a signed URL", signedURL, ""},
	}
	for _, tt := range refused {
		if got, _ := do(http.MethodGet, tt.target, tt.key, ""); got != http.StatusUnauthorized {
			t.Errorf("%s: GET %s: %d, want 401", tt.name, tt.target, got)
		}
	}

	scraped := metricstest.Get(t, srv.URL+metrics.Path, "k")
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "flynn_blobstore_http_request_duration_seconds"} {
		if !scraped.Has(name) {
			t.Errorf("no %s", name)
		}
	}
	for name, want := range map[string]float64{"flynn_blobstore_bytes_in_total": float64(len(blob)), "flynn_blobstore_bytes_out_total": float64(len(blob))} {
		if got, ok := scraped.Find(name, nil); !ok || got.Value < want {
			t.Errorf("%s = %v (found %v), want at least %v", name, got.Value, ok, want)
		}
	}
	for _, labels := range []map[string]string{
		{"code": "200", "method": "PUT", "route": "/*path"},
		{"code": "200", "method": "GET", "route": "/*path"},
		{"code": "404", "method": "GET", "route": "/*path"},
		{"code": "200", "method": "GET", "route": "/"},
		{"code": "405", "method": "POST", "route": metrics.UnmatchedRoute},
		{"code": "401", "method": "GET", "route": metrics.Path},
	} {
		if got, _ := scraped.Find("flynn_blobstore_http_requests_total", labels); got.Value < 1 {
			t.Errorf("flynn_blobstore_http_requests_total%v = %v, want at least 1; have %v", labels, got.Value, scraped["flynn_blobstore_http_requests_total"])
		}
	}
}
