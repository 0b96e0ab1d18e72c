package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/metrics/metricstest"
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

	url := srv.URL + metrics.Path
	if code := metricstest.Status(t, url, ""); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without the key: %d, want 401", code)
	}
	scraped := metricstest.Get(t, url, key)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "flynn_discoverd_http_request_duration_seconds"} {
		if !scraped.Has(name) {
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
		if got, ok := scraped.Find(ch.name, ch.labels); !ok || got.Value != ch.want {
			t.Errorf("%s%v = %v (found %v), want %v", ch.name, ch.labels, got.Value, ok, ch.want)
		}
	}
	for _, op := range []string{"get", "txn", "lease-grant", "watch-open"} {
		if got, _ := scraped.Find("flynn_discoverd_etcd_request_duration_seconds", map[string]string{"op": op}); got.Count == 0 {
			t.Errorf("no etcd latency observed for op %s", op)
		}
	}

	// The watcher is gone once its stream ends.
	stopWatch()
	for range events {
	}
	poll.Until(t, 10*time.Second, "the watcher gauge back to 0", func() bool {
		got, ok := metricstest.Get(t, url, key).Find("flynn_discoverd_watchers", nil)
		return ok && got.Value == 0
	})
}
