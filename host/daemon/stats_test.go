package daemon

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func TestCPUMeter(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	type reading struct {
		after   time.Duration // since t0
		cpu     time.Duration
		percent float64
		ok      bool
	}
	tests := []struct {
		name     string
		readings []reading
	}{
		{"first reading has no rate", []reading{{0, time.Second, 0, false}}},
		{"rate over the window", []reading{
			{0, time.Second, 0, false},
			{time.Second, 1500 * time.Millisecond, 50, true},
			{3 * time.Second, 5500 * time.Millisecond, 200, true},
		}},
		{"too close gives the last rate and keeps the base", []reading{
			{0, 0, 0, false},
			{time.Second, time.Second, 100, true},
			{1100 * time.Millisecond, 1100 * time.Millisecond, 100, true},
			// Measured from the reading at 1s, not the one at 1.1s.
			{2 * time.Second, 1500 * time.Millisecond, 50, true},
		}},
		{"too close without a rate waits", []reading{
			{0, 0, 0, false},
			{100 * time.Millisecond, 50 * time.Millisecond, 0, false},
			{time.Second, 250 * time.Millisecond, 25, true},
		}},
		{"a stale base is replaced", []reading{
			{0, 0, 0, false},
			{2 * time.Minute, time.Minute, 0, false},
			{2*time.Minute + time.Second, time.Minute + 100*time.Millisecond, 10, true},
		}},
		{"a counter that went back reads as idle", []reading{
			{0, time.Hour, 0, false},
			{time.Second, time.Second, 0, true},
		}},
		{"a reading from before the base replaces it", []reading{
			{time.Second, time.Second, 0, false},
			{0, 0, 0, false},
			{time.Second, 500 * time.Millisecond, 50, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newCPUMeter(250*time.Millisecond, time.Minute)
			for i, r := range tt.readings {
				pct, ok := m.observe("j", t0.Add(r.after), r.cpu)
				if ok != r.ok || math.Abs(pct-r.percent) > 1e-9 {
					t.Fatalf("reading %d: observe = %v, %v; want %v, %v", i, pct, ok, r.percent, r.ok)
				}
			}
		})
	}
}

func TestJobStats(t *testing.T) {
	h := newHarness(t, 50000, 50010)
	ctx := context.Background()
	limited := testJob("h1-limited", "sleep")
	limited.Config.Resources.Memory = 256 << 20
	for _, j := range []*host.Job{testJob("h1-web", "sleep"), limited, testJob("h1-done", "exit", "0")} {
		if _, err := h.d.AddJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	h.waitState("h1-done", host.StateDown)
	h.backend.setStats("flynn-h1-web", 1.5, 100<<20)
	h.backend.setStats("flynn-h1-limited", 0, 10<<20)

	s, err := h.d.JobStats(ctx, "h1-web")
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(s.CPUPercent-150) > 1 || s.MemoryBytes != 100<<20 || s.MemoryLimitBytes != 0 {
		t.Errorf("stats = %+v; want 150%% CPU, 100 MiB, no limit", s)
	}
	if s, err := h.d.JobStats(ctx, "h1-limited"); err != nil || s.MemoryLimitBytes != 256<<20 || s.CPUPercent != 0 {
		t.Errorf("stats of the limited job = %+v, %v; want idle, limit 256 MiB", s, err)
	}
	if _, err := h.d.JobStats(ctx, "h1-done"); !httpjson.IsCode(err, httpjson.CodeConflict) {
		t.Errorf("stats of an ended job: %v, want a conflict", err)
	}
	if _, err := h.d.JobStats(ctx, "h1-nope"); !httpjson.IsNotFound(err) {
		t.Errorf("stats of an unknown job: %v, want not found", err)
	}

	// An engine that gives no newer reading a CPU window later: the CPU
	// percentage is the job's average over its life.
	h.d.cpu.forget("h1-web")
	h.backend.mu.Lock()
	h.backend.statsReadAt = time.Now()
	h.backend.mu.Unlock()
	if s, err := h.d.JobStats(ctx, "h1-web"); err != nil || math.Abs(s.CPUPercent-150) > 1 {
		t.Errorf("stats from a stuck engine = %+v, %v; want the average, 150%% CPU", s, err)
	}
	// A hung engine fails the read when the caller gives up.
	h.backend.mu.Lock()
	h.backend.statsHang = true
	h.backend.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := h.d.JobStats(cctx, "h1-web"); err == nil {
		t.Error("stats from a hung engine: no error")
	}
}

// gather collects c's series in a pedantic registry, which checks them
// against their descriptions.
func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range families {
		out[f.GetName()] = f
	}
	return out
}

// values gives a family's values by their labels ("k=v,k=v").
func values(f *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range f.GetMetric() {
		var labels []string
		for _, l := range m.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(labels)
		out[strings.Join(labels, ",")] = m.GetGauge().GetValue() + m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
	}
	return out
}

func TestCollector(t *testing.T) {
	h := newHarness(t, 50000, 50010)
	ctx := context.Background()
	web := testJob("h1-web", "sleep")
	web.Metadata = map[string]string{host.MetaAppName: "example", host.MetaType: "web"}
	for _, j := range []*host.Job{web, testJob("h1-platform", "sleep"), testJob("h1-crash", "sleep"), testJob("h1-stopped", "sleep")} {
		if _, err := h.d.AddJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.d.AddJob(ctx, testJob("h1-nope", "nope")); err == nil {
		t.Fatal("a job that cannot start started")
	}
	h.backend.crash("flynn-h1-crash", 2)
	h.waitState("h1-crash", host.StateCrashed)
	if _, err := h.d.StopJob(ctx, "h1-stopped"); err != nil {
		t.Fatal(err)
	}
	h.backend.setStats("flynn-h1-web", 0.5, 64<<20)

	families := gather(t, h.d.Collector())
	tests := []struct {
		name, labels string
		want         float64
	}{
		{"flynn_host_jobs", "state=up", 2},
		{"flynn_host_jobs", "state=crashed", 1},
		{"flynn_host_jobs", "state=down", 1},
		{"flynn_host_jobs", "state=pending", 0},
		{"flynn_host_job_starts_total", "", 4},
		{"flynn_host_job_stops_total", "", 1},
		// The job that could not start, and the one that crashed.
		{"flynn_host_job_failures_total", "", 2},
		{"flynn_host_container_start_duration_seconds", "", 4},
		{"flynn_host_job_memory_bytes", "app=example,job_id=h1-web,process_type=web", 64 << 20},
		{"flynn_host_job_memory_bytes", "app=,job_id=h1-platform,process_type=", 0},
	}
	for _, tt := range tests {
		if got, ok := values(families[tt.name])[tt.labels]; !ok || got != tt.want {
			t.Errorf("%s{%s} = %v (present: %v); want %v (all: %v)", tt.name, tt.labels, got, ok, tt.want, values(families[tt.name]))
		}
	}
	if cpu := values(families["flynn_host_job_cpu_seconds_total"]); len(cpu) != 2 || cpu["app=example,job_id=h1-web,process_type=web"] <= 0 {
		t.Errorf("flynn_host_job_cpu_seconds_total = %v; want the two running jobs', the web job's above 0", cpu)
	}
}

// A scrape reads a hundred jobs from an engine that answers once a tick
// (as Docker 20.10 does, every second) in a couple of ticks, never more
// than statsConcurrency reads at once; from a hung engine it gives up
// after StatsTimeout, leaving the jobs' series out and the rest in.
func TestCollectorBounded(t *testing.T) {
	const tick = 200 * time.Millisecond
	h := newHarness(t, 50000, 50010, func(h *harness) { h.cfg.StatsTimeout = 10 * tick })
	ctx := context.Background()
	const jobs = 100
	for i := range jobs {
		if _, err := h.d.AddJob(ctx, testJob(fmt.Sprintf("h1-j%03d", i), "sleep")); err != nil {
			t.Fatal(err)
		}
	}
	h.backend.mu.Lock()
	h.backend.statsTick = tick
	h.backend.mu.Unlock()

	start := time.Now()
	families := gather(t, h.d.Collector())
	took := time.Since(start)
	if n := len(families["flynn_host_job_memory_bytes"].GetMetric()); n != jobs {
		t.Errorf("%d jobs' memory series, want %d", n, jobs)
	}
	// Two ticks for the two batches, and a few more on a loaded machine
	// for batches that miss their tick; reads in batches of 8 would take
	// 13.
	if took > 6*tick {
		t.Errorf("the scrape took %s; want about %s, two ticks", took, 2*tick)
	}
	if got := h.backend.maxStatsInFlight(); got > statsConcurrency {
		t.Errorf("%d reads at once; want at most %d", got, statsConcurrency)
	}

	h.backend.mu.Lock()
	h.backend.statsHang = true
	h.backend.mu.Unlock()
	start = time.Now()
	families = gather(t, h.d.Collector())
	took = time.Since(start)
	if families["flynn_host_job_memory_bytes"] != nil {
		t.Errorf("a hung engine's scrape has memory series: %v", values(families["flynn_host_job_memory_bytes"]))
	}
	if got := values(families["flynn_host_jobs"])["state=up"]; got != jobs {
		t.Errorf("flynn_host_jobs{state=up} = %v with a hung engine; want %d", got, jobs)
	}
	if took > 10*tick+time.Second {
		t.Errorf("a hung engine's scrape took %s; want about StatsTimeout, %s", took, 10*tick)
	}
}
