package gitreceive

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openflynn/flynn/pkg/metrics"
)

// How builds end, the result label of flynn_gitreceive_builds_total.
const (
	buildSucceeded = "succeeded"
	buildFailed    = "failed" // the build failed or timed out, or gitreceive could not run it
	buildCancelled = "cancelled"
)

// Why connections are refused, the reason label of
// flynn_gitreceive_ssh_connections_refused_total.
const (
	refusedMaxConns      = "max_conns"
	refusedMaxConnsPerIP = "max_conns_per_ip"
)

// serverMetrics are gitreceive's Prometheus series.
type serverMetrics struct {
	builds        *prometheus.CounterVec
	buildDuration prometheus.Histogram
	conns         prometheus.Gauge
	refused       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *serverMetrics {
	m := &serverMetrics{
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flynn_gitreceive_builds_total",
			Help: "Builds run (slugbuilder jobs, from a build slot on), by result: succeeded, failed (timeouts included) or cancelled (the client went away).",
		}, []string{"result"}),
		buildDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flynn_gitreceive_build_duration_seconds",
			Help:    "Time a build took from getting its build slot to its end, whatever the result.",
			Buckets: []float64{5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600},
		}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flynn_gitreceive_ssh_connections",
			Help: "SSH connections open, those still in their handshake included.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flynn_gitreceive_ssh_connections_refused_total",
			Help: "SSH connections closed as soon as accepted, by the bound they ran into: max_conns or max_conns_per_ip.",
		}, []string{"reason"}),
	}
	// Every result and reason is a series from the start, so rates read
	// from the first scrape.
	for _, r := range []string{buildSucceeded, buildFailed, buildCancelled} {
		m.builds.WithLabelValues(r)
	}
	for _, r := range []string{refusedMaxConns, refusedMaxConnsPerIP} {
		m.refused.WithLabelValues(r)
	}
	reg.MustRegister(m.builds, m.buildDuration, m.conns, m.refused)
	return m
}

// buildEnded counts a build that took since start and ended with err in
// the context of its push, ctx.
func (m *serverMetrics) buildEnded(ctx context.Context, start time.Time, err error) {
	result := buildSucceeded
	switch {
	case err == nil:
	case ctx.Err() != nil:
		result = buildCancelled
	default:
		result = buildFailed
	}
	m.builds.WithLabelValues(result).Inc()
	m.buildDuration.Observe(time.Since(start).Seconds())
}

// MetricsHandler serves the server's metrics (the Go and process
// collectors' too) to requests with the controller key, the one key
// gitreceive has. Run serves it at metrics.Path on Config.MetricsAddr.
func (s *Server) MetricsHandler() http.Handler {
	return metrics.Handler(s.registry, s.cfg.ControllerKey)
}
