package scheduler

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openflynn/flynn/controller"
)

// Metrics is what a scheduler counts of its work, as flynn_scheduler_*
// series. One Metrics outlives the Schedulers of a process: a process
// makes a new Scheduler each time it becomes leader, and its counters go
// on from where the last one left them.
type Metrics struct {
	rounds        prometheus.Counter
	roundDuration prometheus.Histogram
	started       prometheus.Counter
	stopped       prometheus.Counter
	startFailures prometheus.Counter
	deployments   *prometheus.CounterVec
	leader        prometheus.Gauge
}

// NewMetrics registers a scheduler's series in reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns = "flynn_scheduler"
	m := &Metrics{
		rounds: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "rounds_total",
			Help: "Rounds (snapshot, plan, act) the scheduler ran, failed ones included.",
		}),
		roundDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "round_duration_seconds",
			Help: "How long a round took to reconcile the formations with the hosts' jobs, its hosts' starts and stops included.",
			// A round with nothing to do takes milliseconds; one that
			// starts or stops jobs waits for the hosts, up to HostTimeout.
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		started: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "jobs_started_total",
			Help: "Jobs a host accepted to start.",
		}),
		stopped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "jobs_stopped_total",
			Help: "Jobs a host stopped when asked.",
		}),
		startFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "job_start_failures_total",
			Help: "Jobs the scheduler could not start: the host refused or did not answer, or the job's release, artifact or app was unreadable.",
		}),
		deployments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "deployments_total",
			Help: "Deployments the scheduler finished, by result: complete, or failed (rolled back).",
		}, []string{"result"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "is_leader",
			Help: "1 while this scheduler leads and schedules, else 0.",
		}),
	}
	// Both results exist from the start, so that a rate of failures
	// is 0 rather than absent before the first one.
	for _, r := range []string{controller.DeploymentComplete, controller.DeploymentFailed} {
		m.deployments.WithLabelValues(r)
	}
	reg.MustRegister(m.rounds, m.roundDuration, m.started, m.stopped, m.startFailures, m.deployments, m.leader)
	return m
}

func (m *Metrics) round(took time.Duration) {
	m.rounds.Inc()
	m.roundDuration.Observe(took.Seconds())
}

func (m *Metrics) deployment(result string) { m.deployments.WithLabelValues(result).Inc() }

func (m *Metrics) leading(yes bool) {
	if yes {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
}
