package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/metrics/metricstest"
)

func TestMetrics(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.app(t, "metered")
	if _, err := h.client.App(ctx, "metered"); err != nil {
		t.Fatal(err)
	}
	rawGet(t, h.url+"/apps/nosuch", testKey)
	rawGet(t, h.url+"/nowhere", testKey)
	rawGet(t, h.url+"/apps", "guess")
	_, alice := h.person(t, "alice@example.com")
	refused := []struct {
		name string
		key  string // "" sends no credentials
	}{
		{"no key", ""},
		{"a wrong key", "guess"},
		{"a person's API key", alice.Secret},
	}
	url := h.url + metrics.Path
	for _, tt := range refused {
		if code := metricstest.Status(t, url, tt.key); code != http.StatusUnauthorized {
			t.Errorf("%s: GET %s: %d, want 401", tt.name, metrics.Path, code)
		}
	}

	scraped := metricstest.Get(t, url, testKey)
	for _, name := range []string{
		"go_goroutines",
		"process_cpu_seconds_total",
		"flynn_controller_http_request_duration_seconds",
		"flynn_controller_db_pool_acquired_connections",
		"flynn_controller_db_pool_idle_connections",
		"flynn_controller_db_pool_total_connections",
		"flynn_controller_db_pool_max_connections",
		"flynn_controller_db_pool_acquire_wait_seconds_total",
	} {
		if !scraped.Has(name) {
			t.Errorf("no %s", name)
		}
	}
	if got, ok := scraped.Find("flynn_controller_db_pool_acquires_total", nil); !ok || got.Value < 1 {
		t.Errorf("flynn_controller_db_pool_acquires_total = %v (found %v), want at least 1", got.Value, ok)
	}
	requests := scraped["flynn_controller_http_requests_total"]
	for _, labels := range []map[string]string{
		{"code": "201", "method": "POST", "route": "/apps"},
		{"code": "200", "method": "GET", "route": "/apps/:id"},
		{"code": "404", "method": "GET", "route": "/apps/:id"},
		{"code": "404", "method": "GET", "route": metrics.UnmatchedRoute},
		{"code": "401", "method": "GET", "route": metrics.UnmatchedRoute},
		{"code": "201", "method": "POST", "route": "/api-keys"},
	} {
		if got, _ := scraped.Find("flynn_controller_http_requests_total", labels); got.Value < 1 {
			t.Errorf("flynn_controller_http_requests_total%v = %v, want at least 1; have %v", labels, got.Value, requests)
		}
	}
	for _, s := range requests {
		for _, v := range s.Labels {
			if strings.HasPrefix(v, metrics.Path) || strings.Contains(v, "nosuch") || strings.Contains(v, "metered") {
				t.Errorf("series %v: scrapes are not counted, and routes are patterns, not paths", s.Labels)
			}
		}
	}
}
