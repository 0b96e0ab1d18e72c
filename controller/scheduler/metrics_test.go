package scheduler

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/metrics/metricstest"
	"github.com/openflynn/flynn/pkg/poll"
)

// TestMetrics runs a scheduler through a deploy, a failed deploy and a
// scale down, and reads what it counted as Prometheus would.
func TestMetrics(t *testing.T) {
	h := newHarness(t)
	reg := metrics.NewRegistry()
	cfg := testConfig()
	cfg.Metrics = NewMetrics(reg)
	cluster := newFakeCluster("h1")
	r := h.runWith(cfg, cluster)
	srv := httptest.NewServer(metrics.Handler(reg, "k"))
	defer srv.Close()

	ctx := context.Background()
	if _, err := h.ctrl.SetAppRelease(ctx, h.app.ID, h.rel.ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "web=1", func() bool { return cluster.live()[key(h.rel, "web")] == 1 })
	bad := h.release(h.crash)
	if _, err := h.ctrl.SetAppRelease(ctx, h.app.ID, bad.ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "deployment failed", func() bool {
		ds, err := h.ctrl.Deployments(ctx, h.app.ID)
		return err == nil && latest(ds).NewReleaseID == bad.ID && latest(ds).Status == controller.DeploymentFailed
	})
	h.scale(h.rel, map[string]int{})
	poll.Until(t, 5*time.Second, "nothing runs", func() bool { return cluster.live()[key(h.rel, "web")] == 0 })

	url := srv.URL + metrics.Path
	if code := metricstest.Status(t, url, ""); code != http.StatusUnauthorized {
		t.Errorf("metrics without the key: %d, want 401", code)
	}
	// A stop is counted once the host has answered, which may come a
	// moment after the job is gone.
	var scraped metricstest.Scrape
	poll.Until(t, 5*time.Second, "a stop counted", func() bool {
		scraped = metricstest.Get(t, url, "k")
		got, _ := scraped.Find("flynn_scheduler_jobs_stopped_total", nil)
		return got.Value >= 1
	})
	atLeast := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"flynn_scheduler_rounds_total", nil, 2},
		{"flynn_scheduler_jobs_started_total", nil, 2}, // web, then the crashing one
		{"flynn_scheduler_jobs_stopped_total", nil, 1},
		{"flynn_scheduler_deployments_total", map[string]string{"result": "complete"}, 1},
		{"flynn_scheduler_deployments_total", map[string]string{"result": "failed"}, 1},
		{"flynn_scheduler_is_leader", nil, 1},
		{"go_goroutines", nil, 1},
	}
	for _, tt := range atLeast {
		if got, ok := scraped.Find(tt.name, tt.labels); !ok || got.Value < tt.want {
			t.Errorf("%s%v = %v (present: %v), want at least %v", tt.name, tt.labels, got.Value, ok, tt.want)
		}
	}
	if got, ok := scraped.Find("flynn_scheduler_round_duration_seconds", nil); !ok || got.Count < 2 {
		t.Errorf("flynn_scheduler_round_duration_seconds observations = %d (present: %v), want at least 2", got.Count, ok)
	}
	if got, ok := scraped.Find("flynn_scheduler_job_start_failures_total", nil); !ok || got.Value != 0 {
		t.Errorf("flynn_scheduler_job_start_failures_total = %v (present: %v), want 0: every host accepted its jobs", got.Value, ok)
	}

	r.stop()
	if got, _ := metricstest.Get(t, url, "k").Find("flynn_scheduler_is_leader", nil); got.Value != 0 {
		t.Errorf("flynn_scheduler_is_leader = %v once the scheduler stopped, want 0", got.Value)
	}
}
