package client_test

import (
	"math"
	"net/http"
	"testing"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/metrics/metricstest"
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

	if code := metricstest.Status(t, url+"/metrics", ""); code != http.StatusUnauthorized {
		t.Fatalf("metrics without the key: %d, want 401", code)
	}
	scraped := metricstest.Get(t, url+"/metrics", "cluster-key")
	web := map[string]string{"app": "example", "job_id": "host1-web", "process_type": "web"}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"flynn_host_jobs", map[string]string{"state": "up"}, 1},
		{"flynn_host_jobs", map[string]string{"state": "down"}, 1},
		{"flynn_host_jobs", map[string]string{"state": "crashed"}, 0},
		{"flynn_host_job_starts_total", nil, 2},
		{"flynn_host_job_stops_total", nil, 1},
		{"flynn_host_job_failures_total", nil, 0},
		{"flynn_host_job_memory_bytes", web, 64 << 20},
		{"flynn_host_http_requests_total", map[string]string{"code": "200", "method": "GET", "route": "/host/jobs/:id/stats"}, 1},
	}
	for _, tt := range tests {
		if got, ok := scraped.Find(tt.name, tt.labels); !ok || got.Value != tt.want || len(got.Labels) != len(tt.labels) {
			t.Errorf("%s%v = %+v (present: %v); want %v (all: %v)", tt.name, tt.labels, got, ok, tt.want, scraped[tt.name])
		}
	}
	if got, ok := scraped.Find("flynn_host_container_start_duration_seconds", nil); !ok || got.Count != 2 {
		t.Errorf("flynn_host_container_start_duration_seconds observations = %d (present: %v); want 2", got.Count, ok)
	}
	cpu := scraped["flynn_host_job_cpu_seconds_total"]
	if got, ok := scraped.Find("flynn_host_job_cpu_seconds_total", web); len(cpu) != 1 || !ok || len(got.Labels) != len(web) || got.Value <= 0 {
		t.Errorf("flynn_host_job_cpu_seconds_total = %v; want the running job's alone, above 0", cpu)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "flynn_host_http_request_duration_seconds"} {
		if !scraped.Has(name) {
			t.Errorf("no %s", name)
		}
	}
}
