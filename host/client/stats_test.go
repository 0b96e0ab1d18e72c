package client_test

import (
	"math"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// The host API reads a running job's stats through the daemon (here over
// containers that keep half a CPU busy and use 64 MiB), alone or with the
// job list, and a job that does not run has none.
func TestJobStats(t *testing.T) {
	url, stop := exampleHost("host1")
	defer stop()
	ctx := t.Context()
	c := client.New(url, "cluster-key")
	for _, id := range []string{"host1-web", "host1-done"} {
		if _, err := c.AddJob(ctx, &host.Job{ID: id, Artifact: "example/web", Metadata: map[string]string{host.MetaAppName: "example", host.MetaType: "web"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.StopJob(ctx, "host1-done"); err != nil {
		t.Fatal(err)
	}

	s, err := c.JobStats(ctx, "host1-web")
	if err != nil {
		t.Fatal(err)
	}
	// The first reading has nothing to measure against: the host reads
	// the job twice, a CPU window apart.
	if math.Abs(s.CPUPercent-50) > 1 || s.MemoryBytes != 64<<20 || s.MemoryLimitBytes != 0 || s.Time.IsZero() || s.CPUSeconds <= 0 {
		t.Errorf("JobStats = %+v; want 50%% CPU, 64 MiB, no limit, a time", s)
	}

	jobs, err := c.ListJobsWithStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*host.JobStats{}
	for _, j := range jobs {
		got[j.Job.ID] = j.Stats
	}
	if w := got["host1-web"]; w == nil || w.MemoryBytes != 64<<20 || math.Abs(w.CPUPercent-50) > 1 {
		t.Errorf("the running job's stats in the list = %+v; want 50%% CPU, 64 MiB", w)
	}
	if d, ok := got["host1-done"]; !ok || d != nil {
		t.Errorf("the stopped job's stats in the list = %+v (listed: %v); want none", d, ok)
	}
	if plain, err := c.ListJobs(ctx); err != nil || len(plain) != 2 || plain[0].Stats != nil || plain[1].Stats != nil {
		t.Errorf("ListJobs = %v, %v; want both jobs, without stats", plain, err)
	}

	if _, err := c.JobStats(ctx, "host1-done"); !httpjson.IsCode(err, httpjson.CodeConflict) {
		t.Errorf("stats of a stopped job: %v, want a conflict", err)
	}
	if _, err := c.JobStats(ctx, "host1-nope"); !httpjson.IsNotFound(err) {
		t.Errorf("stats of an unknown job: %v, want not found", err)
	}
}

// The host serves its metrics behind the cluster key: jobs by state,
// their starts and ends, each running job's CPU and memory with its app
// and process type, and the API's requests by route.
func TestMetrics(t *testing.T) {
	url, stop := exampleHost("host1")
	defer stop()
	ctx := t.Context()
	c := client.New(url, "cluster-key")
	if _, err := c.AddJob(ctx, &host.Job{ID: "host1-web", Artifact: "example/web", Metadata: map[string]string{host.MetaAppName: "example", host.MetaType: "web"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddJob(ctx, &host.Job{ID: "host1-platform", Artifact: "flynn/discoverd"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StopJob(ctx, "host1-platform"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.JobStats(ctx, "host1-web"); err != nil {
		t.Fatal(err)
	}

	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("metrics without the key: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	req.SetBasicAuth("", "cluster-key")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	// series gives a family's values by their labels ("k=v,k=v").
	series := func(name string) map[string]float64 {
		out := map[string]float64{}
		for _, m := range families[name].GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
			out[strings.Join(labels, ",")] = v
		}
		return out
	}
	tests := []struct {
		name, labels string
		want         float64
	}{
		{"flynn_host_jobs", "state=up", 1},
		{"flynn_host_jobs", "state=down", 1},
		{"flynn_host_jobs", "state=crashed", 0},
		{"flynn_host_job_starts_total", "", 2},
		{"flynn_host_job_stops_total", "", 1},
		{"flynn_host_job_failures_total", "", 0},
		{"flynn_host_container_start_duration_seconds", "", 2},
		{"flynn_host_job_memory_bytes", "app=example,job_id=host1-web,process_type=web", 64 << 20},
		{"flynn_host_http_requests_total", "code=200,method=GET,route=/host/jobs/:id/stats", 1},
	}
	for _, tt := range tests {
		if got, ok := series(tt.name)[tt.labels]; !ok || got != tt.want {
			t.Errorf("%s{%s} = %v (present: %v); want %v (all: %v)", tt.name, tt.labels, got, ok, tt.want, series(tt.name))
		}
	}
	cpu := series("flynn_host_job_cpu_seconds_total")
	if len(cpu) != 1 || cpu["app=example,job_id=host1-web,process_type=web"] <= 0 {
		t.Errorf("flynn_host_job_cpu_seconds_total = %v; want the running job's alone, above 0", cpu)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "flynn_host_http_request_duration_seconds"} {
		if families[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}
