package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// namespace prefixes discoverd's metrics.
const namespace = "flynn_discoverd"

// instanceCountTimeout bounds the etcd read behind flynn_discoverd_instances,
// within Prometheus's default scrape timeout (10s).
const instanceCountTimeout = 5 * time.Second

// newWatchers registers flynn_discoverd_watchers, the watch streams this
// discoverd serves.
func newWatchers(reg prometheus.Registerer) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "watchers",
		Help:      "Watch streams (GET /services/:service/instances as text/event-stream) open on this discoverd.",
	})
	reg.MustRegister(g)
	return g
}

// observeEtcd registers flynn_discoverd_etcd_request_duration_seconds{op}
// and returns the store.Store.Observe that feeds it.
func observeEtcd(reg prometheus.Registerer) func(op string, took time.Duration) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace,
		Name:      "etcd_request_duration_seconds",
		Help:      "Time etcd took to answer the store's requests, by operation (get, put, delete, txn, lease-grant, lease-keepalive, lease-revoke, watch-open).",
		Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"op"})
	reg.MustRegister(h)
	return func(op string, took time.Duration) { h.WithLabelValues(op).Observe(took.Seconds()) }
}

// registerMember registers flynn_discoverd_is_etcd_member: 1 when this
// discoverd runs an etcd member, 0 when it is a client of the members' or
// of an operator's etcd. The role is decided at start, for the process's
// life.
func registerMember(reg prometheus.Registerer, member bool) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "is_etcd_member",
		Help:      "1 when this discoverd runs a member of the etcd cluster, 0 when it is a client of it.",
	})
	if member {
		g.Set(1)
	}
	reg.MustRegister(g)
}

// instanceCounter is what flynn_discoverd_instances reads; *store.Store
// implements it.
type instanceCounter interface {
	InstanceCounts(ctx context.Context) (map[string]int, error)
}

// instancesCollector reports flynn_discoverd_instances{service} from etcd
// at scrape time: the instances are the cluster's, in etcd, not this
// process's, so there is no gauge to keep in step. Every discoverd reports
// the same numbers.
type instancesCollector struct {
	counter instanceCounter
	logger  *slog.Logger
	desc    *prometheus.Desc
}

func newInstancesCollector(counter instanceCounter, logger *slog.Logger) *instancesCollector {
	return &instancesCollector{
		counter: counter,
		logger:  logger,
		desc: prometheus.NewDesc(namespace+"_instances",
			"Live instances registered in each service, as etcd holds them.",
			[]string{"service"}, nil),
	}
}

// Describe sends the collector's one series.
func (c *instancesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect reads the counts from etcd. When etcd does not answer, the
// series is missing from the scrape and the reason is logged.
func (c *instancesCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), instanceCountTimeout)
	defer cancel()
	counts, err := c.counter.InstanceCounts(ctx)
	if err != nil {
		c.logger.Warn("metrics: count instances", "err", err)
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for service, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), service)
	}
}
