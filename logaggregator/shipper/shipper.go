// Package shipper sends log lines to the log aggregator without ever
// holding up the one who ships them: flynn-host's log pumps and the
// router's request path hand lines to Ship, which queues them in a bounded
// queue (dropping, and counting, the oldest when it is full), and Run
// posts them in batches, retrying a failed batch until the aggregator
// takes it.
package shipper

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openflynn/flynn/logaggregator"
)

// Poster sends a batch of encoded lines; logaggregator/client's Client is
// one.
type Poster interface {
	PostEncoded(ctx context.Context, ndjson []byte) error
}

// Defaults of Options.
const (
	DefaultQueueLines = 20000
	// DefaultQueueBytes bounds the data of the queued lines: a flood of
	// lines of the longest kind must not grow its shipper by more.
	DefaultQueueBytes = 16 << 20
	DefaultBatchBytes = 1 << 20
	// DefaultPostTimeout bounds one post.
	DefaultPostTimeout = 10 * time.Second
)

// Options configure a Shipper; the zero value takes the defaults.
type Options struct {
	// QueueLines and QueueBytes bound the lines waiting to be sent (their
	// number, and their data's bytes); past either, lines are dropped and
	// counted.
	QueueLines, QueueBytes int
	// BatchBytes bounds one post (below logaggregator.MaxBatchBytes).
	BatchBytes int
	// PostTimeout bounds one post.
	PostTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before posting a failed
	// batch again; 100 ms and 5 s by default.
	MinBackoff, MaxBackoff time.Duration
	// ReportEvery is how often drops and failures are logged at most; 30 s
	// by default.
	ReportEvery time.Duration
}

// Shipper queues lines and posts them to the aggregator.
type Shipper struct {
	post  Poster
	opts  Options
	log   *slog.Logger
	queue chan logaggregator.Line
	// queued is the data bytes of the lines in queue.
	queued atomic.Int64

	shipped atomic.Uint64
	dropped atomic.Uint64
	failed  atomic.Uint64
}

// New returns a Shipper posting through post; Run sends what Ship queues.
func New(post Poster, opts Options, logger *slog.Logger) *Shipper {
	if opts.QueueLines <= 0 {
		opts.QueueLines = DefaultQueueLines
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = DefaultQueueBytes
	}
	if opts.BatchBytes <= 0 || opts.BatchBytes > logaggregator.MaxBatchBytes/2 {
		opts.BatchBytes = DefaultBatchBytes
	}
	if opts.PostTimeout <= 0 {
		opts.PostTimeout = DefaultPostTimeout
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Second, opts.MinBackoff)
	}
	if opts.ReportEvery <= 0 {
		opts.ReportEvery = 30 * time.Second
	}
	return &Shipper{post: post, opts: opts, log: logger, queue: make(chan logaggregator.Line, opts.QueueLines)}
}

// Ship queues l. It never blocks: when the queue is full it drops its
// oldest lines to make room, since under a flood the newest lines (what an
// app said last, the line after the flood) are worth the most.
func (s *Shipper) Ship(l logaggregator.Line) {
	n := int64(len(l.Data))
	if n > int64(s.opts.QueueBytes) {
		s.dropped.Add(1)
		return
	}
	s.queued.Add(n)
	for {
		select {
		case s.queue <- l:
			for s.queued.Load() > int64(s.opts.QueueBytes) && s.dropOldest() {
			}
			return
		default:
			s.dropOldest() // or Run took one meanwhile: try again
		}
	}
}

// dropOldest drops the line at the head of the queue, if there is one.
func (s *Shipper) dropOldest() bool {
	select {
	case old := <-s.queue:
		s.take(&old)
		s.dropped.Add(1)
		return true
	default:
		return false
	}
}

// take notes that l left the queue.
func (s *Shipper) take(l *logaggregator.Line) {
	s.queued.Add(-int64(len(l.Data)))
}

// Stats are a Shipper's counts since it was made.
type Stats struct {
	// Shipped lines the aggregator took; Dropped lines that did not fit
	// the queue; FailedPosts posts that failed (and were tried again).
	Shipped, Dropped, FailedPosts uint64
}

// Stats returns the counts so far.
func (s *Shipper) Stats() Stats {
	return Stats{Shipped: s.shipped.Load(), Dropped: s.dropped.Load(), FailedPosts: s.failed.Load()}
}

// Run posts queued lines until ctx ends; then it posts what is queued
// once more, for at most a second, and returns.
func (s *Shipper) Run(ctx context.Context) {
	var (
		buf         bytes.Buffer
		enc         = json.NewEncoder(&buf)
		batchLines  int
		lastReport  time.Time
		lastDropped uint64
	)
	add := func(l *logaggregator.Line) {
		s.take(l)
		if enc.Encode(l) == nil {
			batchLines++
		}
	}
	for {
		buf.Reset()
		batchLines = 0
		select {
		case <-ctx.Done():
			s.flush(context.WithoutCancel(ctx))
			return
		case l := <-s.queue:
			add(&l)
		}
		// Take what else is queued: lines that came while the last post
		// was in flight go out together.
	fill:
		for buf.Len() < s.opts.BatchBytes {
			select {
			case l := <-s.queue:
				add(&l)
			default:
				break fill
			}
		}
		s.send(ctx, buf.Bytes(), batchLines)
		if now := time.Now(); now.Sub(lastReport) >= s.opts.ReportEvery {
			if d := s.dropped.Load(); d != lastDropped {
				s.log.Warn("dropped log lines: the queue to the log aggregator was full", "dropped", d-lastDropped, "queue_lines", s.opts.QueueLines)
				lastDropped = d
			}
			lastReport = now
		}
	}
}

// send posts one batch until it is taken or ctx ends.
func (s *Shipper) send(ctx context.Context, batch []byte, lines int) {
	backoff := s.opts.MinBackoff
	var lastLogged time.Time
	for {
		pctx, cancel := context.WithTimeout(ctx, s.opts.PostTimeout)
		err := s.post.PostEncoded(pctx, batch)
		cancel()
		if err == nil {
			s.shipped.Add(uint64(lines))
			return
		}
		s.failed.Add(1)
		if ctx.Err() != nil {
			return
		}
		if now := time.Now(); now.Sub(lastLogged) >= s.opts.ReportEvery {
			s.log.Warn("cannot reach the log aggregator; retrying", "err", err, "lines", lines)
			lastLogged = now
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.opts.MaxBackoff)
	}
}

// flush posts what is queued once, within a second.
func (s *Shipper) flush(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	n := 0
	for {
		select {
		case l := <-s.queue:
			s.take(&l)
			if enc.Encode(&l) == nil {
				n++
			}
			if buf.Len() < s.opts.BatchBytes {
				continue
			}
		default:
		}
		if n == 0 {
			return
		}
		if err := s.post.PostEncoded(ctx, buf.Bytes()); err != nil {
			return
		}
		s.shipped.Add(uint64(n))
		buf.Reset()
		n = 0
	}
}

// Collector reports the Shipper's counts as
// <namespace>_log_lines_shipped_total, _log_lines_dropped_total and
// _log_posts_failed_total.
func (s *Shipper) Collector(namespace string) prometheus.Collector {
	return &collector{s: s,
		shipped: prometheus.NewDesc(namespace+"_log_lines_shipped_total", "Log lines the log aggregator took.", nil, nil),
		dropped: prometheus.NewDesc(namespace+"_log_lines_dropped_total", "Log lines dropped (the oldest queued) because the queue to the log aggregator was full.", nil, nil),
		failed:  prometheus.NewDesc(namespace+"_log_posts_failed_total", "Posts of log lines to the aggregator that failed (and were retried).", nil, nil),
	}
}

type collector struct {
	s                        *Shipper
	shipped, dropped, failed *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.shipped
	ch <- c.dropped
	ch <- c.failed
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	ch <- prometheus.MustNewConstMetric(c.shipped, prometheus.CounterValue, float64(st.Shipped))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.Dropped))
	ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(st.FailedPosts))
}
