package daemon

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openflynn/flynn/host"
)

// metrics are the daemon's counters, kept as jobs start and end.
type metrics struct {
	starts        prometheus.Counter
	stops         prometheus.Counter
	failures      prometheus.Counter
	startDuration prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{
		starts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flynn_host_job_starts_total",
			Help: "Jobs whose container started.",
		}),
		stops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flynn_host_job_stops_total",
			Help: "Jobs that ended down: stopped on request, or exited with status 0.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flynn_host_job_failures_total",
			Help: "Jobs whose container could not be created or started, and jobs that crashed (exited non-zero by themselves) or failed.",
		}),
		startDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flynn_host_container_start_duration_seconds",
			Help:    "Time to create and start a job's container.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.starts, m.stops, m.failures, m.startDuration}
}

// Descriptions of the series read at scrape time.
var (
	jobsDesc = prometheus.NewDesc("flynn_host_jobs",
		"Jobs the host knows, by state; ended ones until they are collected.", []string{"state"}, nil)
	jobLabels  = []string{"job_id", "app", "process_type"}
	jobCPUDesc = prometheus.NewDesc("flynn_host_job_cpu_seconds_total",
		"CPU time a running job has used since it started.", jobLabels, nil)
	jobMemoryDesc = prometheus.NewDesc("flynn_host_job_memory_bytes",
		"Memory a running job uses, without the file cache the kernel can take back.", jobLabels, nil)
)

// jobStates are the states flynn_host_jobs reports, each even at 0, so
// that a state's series does not come and go.
var jobStates = []host.JobState{
	host.StatePending, host.StateStarting, host.StateUp, host.StateStopping,
	host.StateDown, host.StateCrashed, host.StateFailed,
}

// Collector returns the daemon's Prometheus series: jobs by state,
// starts, stops, failures, container start latency, and each running
// job's CPU time and memory (labelled with its job id, and the app name
// and process type from its metadata: empty for a platform job without
// them), read from the runtime at scrape time, concurrently and within
// Config.StatsTimeout.
func (d *Daemon) Collector() prometheus.Collector { return collector{d} }

type collector struct{ d *Daemon }

// Describe sends every series' description.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.d.metrics.collectors() {
		m.Describe(ch)
	}
	ch <- jobsDesc
	ch <- jobCPUDesc
	ch <- jobMemoryDesc
}

// Collect sends the counters, counts the jobs by state, and reads the
// running jobs' stats.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	for _, m := range d.metrics.collectors() {
		m.Collect(ch)
	}
	counts := map[host.JobState]int{}
	d.mu.Lock()
	for _, j := range d.jobs {
		counts[j.active.State]++
	}
	d.mu.Unlock()
	for _, s := range jobStates {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}

	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.StatsTimeout)
	defer cancel()
	forEachJob(ctx, d.runningJobs(), func(t statsTarget) {
		s, err := d.backend.Stats(ctx, t.container)
		if err != nil {
			// Ended meanwhile, or not read in time: left out of this scrape.
			d.log.Debug("read job stats for metrics", "job_id", t.id, "err", err)
			return
		}
		// The reading serves `ps` too: a job scraped within the last
		// minute gets its CPU percentage from one reading.
		d.cpu.observe(t.id, s.Read, s.CPU)
		labels := []string{t.id, t.meta[host.MetaAppName], t.meta[host.MetaType]}
		ch <- prometheus.MustNewConstMetric(jobCPUDesc, prometheus.CounterValue, s.CPU.Seconds(), labels...)
		ch <- prometheus.MustNewConstMetric(jobMemoryDesc, prometheus.GaugeValue, float64(s.Memory), labels...)
	})
}
