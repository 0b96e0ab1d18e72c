package scheduler

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/metrics"
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

	// scrape returns the value of each series without labels, and of
	// deployments_total by result.
	scrape := func(key string) (int, map[string]float64) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+metrics.Path, nil)
		if key != "" {
			req.SetBasicAuth("", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, nil
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatalf("metrics do not parse: %v", err)
		}
		got := map[string]float64{}
		for name, f := range families {
			for _, m := range f.GetMetric() {
				n := name
				for _, l := range m.GetLabel() {
					n += "{" + l.GetName() + "=" + l.GetValue() + "}"
				}
				switch {
				case m.Counter != nil:
					got[n] = m.GetCounter().GetValue()
				case m.Gauge != nil:
					got[n] = m.GetGauge().GetValue()
				case m.Histogram != nil:
					got[n+"_count"] = float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
		return resp.StatusCode, got
	}
	if code, _ := scrape(""); code != http.StatusUnauthorized {
		t.Errorf("metrics without the key: %d, want 401", code)
	}
	// A stop is counted once the host has answered, which may come a
	// moment after the job is gone.
	var got map[string]float64
	poll.Until(t, 5*time.Second, "a stop counted", func() bool {
		_, got = scrape("k")
		return got["flynn_scheduler_jobs_stopped_total"] >= 1
	})
	atLeast := map[string]float64{
		"flynn_scheduler_rounds_total":                       2,
		"flynn_scheduler_round_duration_seconds_count":       2,
		"flynn_scheduler_jobs_started_total":                 2, // web, then the crashing one
		"flynn_scheduler_jobs_stopped_total":                 1,
		"flynn_scheduler_deployments_total{result=complete}": 1,
		"flynn_scheduler_deployments_total{result=failed}":   1,
		"flynn_scheduler_is_leader":                          1,
		"go_goroutines":                                      1,
	}
	for name, want := range atLeast {
		if v, ok := got[name]; !ok || v < want {
			t.Errorf("%s = %v (present: %v), want at least %v", name, v, ok, want)
		}
	}
	if v, ok := got["flynn_scheduler_job_start_failures_total"]; !ok || v != 0 {
		t.Errorf("flynn_scheduler_job_start_failures_total = %v (present: %v), want 0: every host accepted its jobs", v, ok)
	}

	r.stop()
	if _, got := scrape("k"); got["flynn_scheduler_is_leader"] != 0 {
		t.Errorf("flynn_scheduler_is_leader = %v once the scheduler stopped, want 0", got["flynn_scheduler_is_leader"])
	}
}
