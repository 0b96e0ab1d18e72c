package server

import (
	"net/http"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/openflynn/flynn/host"
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

	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodGet, h.srv.URL+"/metrics", nil)
	req.SetBasicAuth("", testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	for _, name := range []string{"flynn_host_job_cpu_seconds_total", "flynn_host_job_memory_bytes"} {
		ms := families[name].GetMetric()
		if len(ms) != 1 {
			t.Fatalf("%s has %d series, want the job's", name, len(ms))
		}
		labels := map[string]string{}
		for _, l := range ms[0].GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["job_id"] != j.ID || labels["app"] != "example" || labels["process_type"] != "worker" {
			t.Errorf("%s labels = %v", name, labels)
		}
	}
	if mem := families["flynn_host_job_memory_bytes"].GetMetric()[0].GetGauge().GetValue(); mem < 32<<20 {
		t.Errorf("flynn_host_job_memory_bytes = %v, want 32 MiB or more", mem)
	}
	for _, name := range []string{"flynn_host_jobs", "flynn_host_job_starts_total", "flynn_host_container_start_duration_seconds", "flynn_host_http_requests_total", "go_goroutines", "process_cpu_seconds_total"} {
		if families[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}
