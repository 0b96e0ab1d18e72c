package server

import (
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	flynnmetrics "github.com/openflynn/flynn/pkg/metrics"
)

// metrics are the router's Prometheus metrics, in a registry of the Router's
// own (no global state) with the Go runtime and process collectors, served
// on Config.MetricsAddr.
type metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	unmatched prometheus.Counter
	tcpConns  *prometheus.CounterVec
}

// routeLabels are the labels of every per-route series: the route id and
// what it matches ("example.com/path" or "tcp:2222"), so a dashboard reads
// without looking ids up.
func routeLabels(e *routeEntry) []string {
	r := e.route
	target := r.Domain + e.path
	if r.Type == "tcp" {
		target = "tcp:" + strconv.Itoa(r.Port)
	}
	return []string{r.ID, target, r.Service}
}

func newMetrics(table *atomic.Pointer[table]) *metrics {
	labels := []string{"route", "target", "service"}
	m := &metrics{
		registry: flynnmetrics.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flynn_router_requests_total",
			Help: "HTTP requests proxied, by route and status class (499: the client went away).",
		}, append(labels, "status")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flynn_router_request_duration_seconds",
			Help:    "Time from receiving an HTTP request to the end of its response, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, labels),
		unmatched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flynn_router_unmatched_requests_total",
			Help: "HTTP requests answered 404 because no route matched.",
		}),
		tcpConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flynn_router_tcp_connections_total",
			Help: "TCP connections accepted, by route.",
		}, labels),
	}
	m.registry.MustRegister(m.requests, m.duration, m.unmatched, m.tcpConns,
		&backendsCollector{table: table, desc: prometheus.NewDesc(
			"flynn_router_backends",
			"Live backends of each route's service.",
			labels, nil)})
	return m
}

// routeMetrics are one route's series, resolved once when the route table
// is built so the request path does no label lookups.
type routeMetrics struct {
	byClass  [6]prometheus.Counter // 1xx..5xx at 1..5, 499 at 0
	duration prometheus.Observer
	tcpConns prometheus.Counter
}

func (m *metrics) forRoute(e *routeEntry) *routeMetrics {
	labels := routeLabels(e)
	rm := &routeMetrics{
		duration: m.duration.WithLabelValues(labels...),
		tcpConns: m.tcpConns.WithLabelValues(labels...),
	}
	for i, class := range []string{"499", "1xx", "2xx", "3xx", "4xx", "5xx"} {
		rm.byClass[i] = m.requests.WithLabelValues(append(labels, class)...)
	}
	return rm
}

// forget deletes the series of a route that is gone, so removed routes do
// not accumulate.
func (m *metrics) forget(e *routeEntry) {
	labels := routeLabels(e)
	m.duration.DeleteLabelValues(labels...)
	m.tcpConns.DeleteLabelValues(labels...)
	for _, class := range []string{"499", "1xx", "2xx", "3xx", "4xx", "5xx"} {
		m.requests.DeleteLabelValues(append(labels, class)...)
	}
}

func (rm *routeMetrics) countStatus(status int) {
	i := status / 100
	if status == 499 || i < 1 || i > 5 {
		i = 0
	}
	rm.byClass[i].Inc()
}

// backendsCollector reports each route's backend count at scrape time from
// the current table, so there is no gauge to keep in step.
type backendsCollector struct {
	table *atomic.Pointer[table]
	desc  *prometheus.Desc
}

func (c *backendsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *backendsCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.table.Load()
	if t == nil {
		return
	}
	for _, e := range t.all {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(e.pool.size()), routeLabels(e)...)
	}
}

// registerAll registers more collectors beside the router's own.
func registerAll(reg *prometheus.Registry, cs []prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("router: metrics: %w", err)
		}
	}
	return nil
}
