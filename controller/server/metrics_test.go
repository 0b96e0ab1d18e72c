package server

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/openflynn/flynn/pkg/metrics"
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
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url+metrics.Path, nil)
			if tt.key != "" {
				req.SetBasicAuth("", tt.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("GET %s: %d, want 401", metrics.Path, resp.StatusCode)
			}
		})
	}

	// The families' type is client_model's, which this module does not
	// import directly.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url+metrics.Path, nil)
	req.SetBasicAuth("", testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s with the controller key: %d, want 200", metrics.Path, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
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
		if families[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	if f := families["flynn_controller_db_pool_acquires_total"]; f == nil || f.GetMetric()[0].GetCounter().GetValue() < 1 {
		t.Errorf("flynn_controller_db_pool_acquires_total = %v, want at least 1", f)
	}
	got := map[string]float64{}
	for _, m := range families["flynn_controller_http_requests_total"].GetMetric() {
		var labels []string
		for _, l := range m.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(labels)
		got[strings.Join(labels, ",")] = m.GetCounter().GetValue()
	}
	for _, want := range []string{
		"code=201,method=POST,route=/apps",
		"code=200,method=GET,route=/apps/:id",
		"code=404,method=GET,route=/apps/:id",
		"code=404,method=GET,route=" + metrics.UnmatchedRoute,
		"code=401,method=GET,route=" + metrics.UnmatchedRoute,
		"code=201,method=POST,route=/api-keys",
	} {
		if got[want] < 1 {
			t.Errorf("flynn_controller_http_requests_total{%s} = %v, want at least 1; have %v", want, got[want], got)
		}
	}
	for labels := range got {
		if strings.Contains(labels, "route="+metrics.Path) || strings.Contains(labels, "nosuch") || strings.Contains(labels, "metered") {
			t.Errorf("series %s: scrapes are not counted, and routes are patterns, not paths", labels)
		}
	}
}
