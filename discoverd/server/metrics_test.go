package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/poll"
)

// TestMetrics scrapes a discoverd's /metrics while it has instances and a
// watcher: the cluster key is required, the text parses, and the series
// say what happened.
func TestMetrics(t *testing.T) {
	const key = "s3cret"
	srv := discoverdtest.New(t, discoverdtest.Options{Key: key})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := srv.Client()
	for _, s := range []string{"web", "empty"} {
		if err := c.AddService(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, addr := range []string{"127.0.0.1:1", "127.0.0.1:2"} {
		if _, err := c.RegisterOnce(ctx, "web", &discoverd.Instance{Addr: addr, Proto: "http"}); err != nil {
			t.Fatal(err)
		}
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	events, err := c.Watch(watchCtx, "web")
	if err != nil {
		t.Fatal(err)
	}
	for e := range events { // the watch is open once its initial set arrived
		if e.Kind == discoverd.EventCurrent {
			break
		}
	}

	if code := scrapeStatus(t, srv.URL, ""); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without the key: %d, want 401", code)
	}
	families := scrape(t, srv.URL, key)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "flynn_discoverd_http_request_duration_seconds"} {
		if families[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"flynn_discoverd_instances", map[string]string{"service": "web"}, 2},
		{"flynn_discoverd_instances", map[string]string{"service": "empty"}, 0},
		{"flynn_discoverd_watchers", nil, 1},
		{"flynn_discoverd_is_etcd_member", nil, 1},
		{"flynn_discoverd_http_requests_total", map[string]string{"method": "PUT", "route": "/services/:service/instances/:id", "code": "200"}, 2},
		{"flynn_discoverd_http_requests_total", map[string]string{"method": "GET", "route": "/metrics", "code": "401"}, 1},
	}
	for _, ch := range checks {
		if got, ok := find(families, ch.name, ch.labels); !ok || got.value != ch.want {
			t.Errorf("%s%v = %v (found %v), want %v", ch.name, ch.labels, got.value, ok, ch.want)
		}
	}
	for _, op := range []string{"get", "txn", "lease-grant", "watch-open"} {
		if got, _ := find(families, "flynn_discoverd_etcd_request_duration_seconds", map[string]string{"op": op}); got.count == 0 {
			t.Errorf("no etcd latency observed for op %s", op)
		}
	}

	// The watcher is gone once its stream ends.
	stopWatch()
	for range events {
	}
	poll.Until(t, 10*time.Second, "the watcher gauge back to 0", func() bool {
		got, ok := find(scrape(t, srv.URL, key), "flynn_discoverd_watchers", nil)
		return ok && got.value == 0
	})
}

func scrapeStatus(t *testing.T, base, key string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+metrics.Path, nil)
	if key != "" {
		req.SetBasicAuth("", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// series is one series of a scrape: its labels and its value (a counter's
// or gauge's) or sample count (a histogram's).
type series struct {
	labels map[string]string
	value  float64
	count  uint64
}

// scrape reads base's /metrics with key and parses it as Prometheus does.
func scrape(t *testing.T, base, key string) map[string][]series {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+metrics.Path, nil)
	req.SetBasicAuth("", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	out := map[string][]series{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			s := series{labels: map[string]string{}, value: m.GetCounter().GetValue() + m.GetGauge().GetValue(), count: m.GetHistogram().GetSampleCount()}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			out[name] = append(out[name], s)
		}
	}
	return out
}

// find returns the series of name whose labels include labels.
func find(scraped map[string][]series, name string, labels map[string]string) (series, bool) {
	for _, s := range scraped[name] {
		match := true
		for k, v := range labels {
			match = match && s.labels[k] == v
		}
		if match {
			return s, true
		}
	}
	return series{}, false
}
