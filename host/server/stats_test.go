package server

import (
	"testing"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/metrics/metricstest"
)

// A job that keeps a CPU busy holding 32 MiB shows it in its stats and in
// the host's metrics, read from Docker.
func TestJobStatsFromDocker(t *testing.T) {
	h := newTestHost(t, nil)
	j := h.job("spin", "32")
	j.Metadata = map[string]string{host.MetaAppName: "example", host.MetaType: "worker"}
	h.add(j)
	h.waitState(j.ID, host.StateUp)

	s, err := h.c.JobStats(ctxT(t), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A busy loop keeps a CPU busy, but a loaded machine (a CI runner
	// running every package's tests) may give it a small share of one.
	if s.CPUPercent < 2 || s.CPUPercent > 150 || s.MemoryBytes < 32<<20 || s.MemoryLimitBytes != 0 {
		t.Errorf("stats = %+v; want up to 100%% CPU, 32 MiB or more, no limit", s)
	}
	jobs, err := h.c.ListJobsWithStats(ctxT(t))
	if err != nil || len(jobs) != 1 || jobs[0].Stats == nil || jobs[0].Stats.MemoryBytes < 32<<20 {
		t.Fatalf("ListJobsWithStats = %v, %v; want the job with its stats", jobs, err)
	}

	scraped := metricstest.Get(t, h.srv.URL+"/metrics", testKey)
	for _, name := range []string{"flynn_host_job_cpu_seconds_total", "flynn_host_job_memory_bytes"} {
		series := scraped[name]
		if len(series) != 1 {
			t.Fatalf("%s has %d series, want the job's", name, len(series))
		}
		if labels := series[0].Labels; labels["job_id"] != j.ID || labels["app"] != "example" || labels["process_type"] != "worker" {
			t.Errorf("%s labels = %v", name, labels)
		}
	}
	if mem := scraped["flynn_host_job_memory_bytes"][0].Value; mem < 32<<20 {
		t.Errorf("flynn_host_job_memory_bytes = %v, want 32 MiB or more", mem)
	}
	for _, name := range []string{"flynn_host_jobs", "flynn_host_job_starts_total", "flynn_host_container_start_duration_seconds", "flynn_host_http_requests_total", "go_goroutines", "process_cpu_seconds_total"} {
		if !scraped.Has(name) {
			t.Errorf("no %s", name)
		}
	}
}
