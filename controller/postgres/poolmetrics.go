package postgres

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// PoolCollector reports a pgx pool's statistics (pgxpool.Stat), read at
// each scrape, as <namespace>_db_pool_* series: how many connections are
// acquired, idle, being opened, open and allowed, and how acquiring them
// went (how many, how long in all, how many found none idle and how long
// those waited, how many were cancelled). A pool whose acquires wait is
// too small for the load or held by slow queries.
type PoolCollector struct {
	pool *pgxpool.Pool

	acquired, idle, constructing, total, max *prometheus.Desc
	acquires, acquireSeconds                 *prometheus.Desc
	emptyAcquires, waitSeconds, canceled     *prometheus.Desc
}

var _ prometheus.Collector = (*PoolCollector)(nil)

// NewPoolCollector returns the collector of pool's statistics under
// namespace ("flynn_controller").
func NewPoolCollector(namespace string, pool *pgxpool.Pool) *PoolCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "db_pool", name), help, nil, nil)
	}
	return &PoolCollector{
		pool:           pool,
		acquired:       desc("acquired_connections", "Connections of the database pool in use by a query or transaction."),
		idle:           desc("idle_connections", "Connections of the database pool open and idle."),
		constructing:   desc("constructing_connections", "Connections of the database pool being opened."),
		total:          desc("total_connections", "Connections of the database pool: acquired, idle and being opened."),
		max:            desc("max_connections", "Most connections the database pool opens."),
		acquires:       desc("acquires_total", "Connections acquired from the database pool."),
		acquireSeconds: desc("acquire_duration_seconds_total", "Time spent acquiring connections from the database pool, waits included."),
		emptyAcquires:  desc("empty_acquires_total", "Acquires from the database pool that found no idle connection and waited for one."),
		waitSeconds:    desc("acquire_wait_seconds_total", "Time acquires from the database pool spent waiting for a connection when none was idle."),
		canceled:       desc("canceled_acquires_total", "Acquires from the database pool given up (their context ended) before they got a connection."),
	}
}

// Describe sends the descriptions of every series.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.constructing, c.total, c.max, c.acquires, c.acquireSeconds, c.emptyAcquires, c.waitSeconds, c.canceled} {
		ch <- d
	}
}

// Collect reads the pool's statistics and sends them.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	gauge := func(d *prometheus.Desc, v int32) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.acquired, s.AcquiredConns())
	gauge(c.idle, s.IdleConns())
	gauge(c.constructing, s.ConstructingConns())
	gauge(c.total, s.TotalConns())
	gauge(c.max, s.MaxConns())
	counter(c.acquires, float64(s.AcquireCount()))
	counter(c.acquireSeconds, s.AcquireDuration().Seconds())
	counter(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	counter(c.waitSeconds, s.EmptyAcquireWaitTime().Seconds())
	counter(c.canceled, float64(s.CanceledAcquireCount()))
}
