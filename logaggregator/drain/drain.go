// Package drain sends apps' log lines to their log drains
// (controller.LogDrain): syslog receivers over TCP or TLS, and HTTPS
// endpoints that take Heroku's logplex batches. The log aggregator runs
// one Manager, gives it every app's drains (Sync, from the controller's
// GET /drains) and every line it keeps (Send).
//
//	Send ─► per drain: buffer (bounded) ─► sender goroutine ─► transport ─► receiver
//	                     │ full: oldest line dropped, counted   │ failure: same batch again after a backoff
//	                     └─► Options.OnDrop (≤ 1 per drain per DropReportInterval)
//
// Send never blocks on a receiver. Each drain holds at most BufferLines
// lines while its receiver is slow or down; lines leave it only when the
// receiver has them (a syslog write the kernel took, a 2xx reply to a
// POST) or when the buffer is full, which drops the oldest lines and
// counts them (Stats, OnDrop). A failed connection or send is tried
// again, with the same lines, after a backoff growing from MinBackoff to
// MaxBackoff. Each drain sends its lines in the order Send got them.
//
// syslog.go says how a line is written as a syslog message.
package drain

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/logaggregator"
)

// Defaults of Options.
const (
	DefaultBufferLines        = 10000
	DefaultBatchLines         = 500
	DefaultBatchWait          = time.Second
	DefaultMinBackoff         = 100 * time.Millisecond
	DefaultMaxBackoff         = 30 * time.Second
	DefaultTimeout            = 30 * time.Second
	DefaultDropReportInterval = 10 * time.Second
)

// maxBatchBytes bounds the line data of one write or POST; a longer line
// goes alone.
const maxBatchBytes = 1 << 20

// Options configures a Manager. The zero value uses the defaults.
type Options struct {
	// BufferLines bounds the lines each drain holds for its receiver,
	// those being sent included; default DefaultBufferLines.
	BufferLines int
	// BatchLines bounds the lines of one syslog write or HTTPS POST;
	// default DefaultBatchLines, and at most half of BufferLines.
	BatchLines int
	// BatchWait is how long an HTTPS drain waits for a batch to fill
	// before it POSTs what it has; default DefaultBatchWait. Syslog
	// drains write what they have at once.
	BatchWait time.Duration
	// MinBackoff and MaxBackoff bound the wait before a failed
	// connection or send is tried again, which doubles with each failure
	// in a row; defaults DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds connecting and each write or POST; default
	// DefaultTimeout.
	Timeout time.Duration
	// RootCAs verifies the certificates of TLS and HTTPS receivers; nil
	// uses the system's roots.
	RootCAs *x509.CertPool
	// OnDrop, when set, is told how many lines of an app a drain dropped
	// since it was last told, at most once per drain per
	// DropReportInterval (the log aggregator writes it into the app's log,
	// as Heroku's "Error L10 (output buffer overflow)"). It is called from
	// a goroutine of its own, never from Send, so it may call Send.
	OnDrop func(appID, drainID string, n uint64)
	// DropReportInterval: see OnDrop; default DefaultDropReportInterval.
	DropReportInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.BufferLines <= 0 {
		o.BufferLines = DefaultBufferLines
	}
	if o.BatchLines <= 0 {
		o.BatchLines = DefaultBatchLines
	}
	// A full buffer keeps room for lines that are not in flight, so that
	// it drops old lines rather than new ones.
	o.BatchLines = max(min(o.BatchLines, o.BufferLines/2), 1)
	if o.BatchWait <= 0 {
		o.BatchWait = DefaultBatchWait
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.DropReportInterval <= 0 {
		o.DropReportInterval = DefaultDropReportInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Manager runs the log drains of every app. Its methods are safe for
// concurrent use.
type Manager struct {
	opts Options
	log  *slog.Logger
	// http is shared by the HTTPS drains.
	http *http.Client

	mu     sync.RWMutex
	closed bool
	drains map[string]*sender   // by drain id
	byApp  map[string][]*sender // by app id, in drain id order

	// senders counts the running senders.
	senders sync.WaitGroup
	// dropped wakes the drop reporter; stopReports ends it, and
	// reportsDone closes when it has.
	dropped     chan struct{}
	stopReports chan struct{}
	reportsDone chan struct{}
}

// NewManager returns a Manager without drains. Close stops it.
func NewManager(opts Options) *Manager {
	opts.setDefaults()
	m := &Manager{
		opts:        opts,
		log:         opts.Logger.With("component", "drain"),
		drains:      map[string]*sender{},
		byApp:       map[string][]*sender{},
		dropped:     make(chan struct{}, 1),
		stopReports: make(chan struct{}),
		reportsDone: make(chan struct{}),
	}
	m.http = &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: opts.Timeout}).DialContext,
			TLSClientConfig:     &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: opts.Timeout,
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
		},
		// A receiver that moved says so in its own logs; following it
		// would POST an app's log wherever a reply points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	go func() {
		defer close(m.reportsDone)
		m.reportDrops()
	}()
	return m
}

// Sync makes the running drains those in drains: it starts each new one
// and stops each one no longer there (its buffered lines are discarded).
// A drain whose URL cannot be sent to is left out, and named in the
// error; the others run all the same. After Close it does nothing.
func (m *Manager) Sync(drains []controller.LogDrain) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	want := make(map[string]controller.LogDrain, len(drains))
	for _, d := range drains {
		want[d.ID] = d
	}
	for id, s := range m.drains {
		if d, ok := want[id]; !ok || d.URL != s.drain.URL || d.AppID != s.drain.AppID {
			s.stop()
			delete(m.drains, id)
		}
	}
	var errs []error
	for id, d := range want {
		if _, ok := m.drains[id]; ok {
			continue
		}
		s, err := m.start(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("drain %s of app %s (%s): %w", d.ID, d.AppID, controller.RedactLogDrainURL(d.URL), err))
			continue
		}
		m.drains[id] = s
	}
	clear(m.byApp)
	for _, s := range m.drains {
		m.byApp[s.drain.AppID] = append(m.byApp[s.drain.AppID], s)
	}
	for _, list := range m.byApp {
		slices.SortFunc(list, func(a, b *sender) int { return cmp.Compare(a.drain.ID, b.drain.ID) })
	}
	return errors.Join(errs...)
}

// start runs a sender for d; m.mu is held.
func (m *Manager) start(d controller.LogDrain) (*sender, error) {
	u, err := controller.ParseLogDrainURL(d.URL)
	if err != nil {
		return nil, err
	}
	s := &sender{
		drain:      d,
		buf:        newBuffer(m.opts.BufferLines),
		opts:       &m.opts,
		log:        m.log.With("drain", d.ID, "app", d.AppID, "url", controller.RedactLogDrainURL(d.URL)),
		closing:    make(chan struct{}),
		batchLines: m.opts.BatchLines,
	}
	switch u.Scheme {
	case controller.LogDrainSchemeSyslogTLS:
		s.t = &syslogTransport{addr: u.Host, timeout: m.opts.Timeout,
			tls: &tls.Config{RootCAs: m.opts.RootCAs, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}}
	case controller.LogDrainSchemeSyslogTCP:
		s.t = &syslogTransport{addr: u.Host, timeout: m.opts.Timeout}
	case controller.LogDrainSchemeHTTPS:
		s.t = &httpsTransport{url: u.String(), label: controller.RedactLogDrainURL(d.URL), drainID: d.ID, client: m.http}
		s.batchWait = m.opts.BatchWait
	default:
		return nil, fmt.Errorf("no transport for scheme %q", u.Scheme)
	}
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	m.senders.Add(1)
	go func() {
		defer m.senders.Done()
		defer s.t.close()
		s.run(ctx)
	}()
	return s, nil
}

// Send hands a copy of l to every drain of l.AppID, dropping a drain's
// oldest line when its buffer is full. It never blocks on a receiver.
func (m *Manager) Send(l *logaggregator.Line) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, s := range m.byApp[l.AppID] {
		if s.buf.push(l) {
			select {
			case m.dropped <- struct{}{}:
			default:
			}
		}
	}
}

// Stats returns each running drain's counts, by drain id.
func (m *Manager) Stats() []logaggregator.DrainStats {
	m.mu.RLock()
	stats := make([]logaggregator.DrainStats, 0, len(m.drains))
	for _, s := range m.drains {
		stats = append(stats, s.stats())
	}
	m.mu.RUnlock()
	slices.SortFunc(stats, func(a, b logaggregator.DrainStats) int { return cmp.Compare(a.DrainID, b.DrainID) })
	return stats
}

// Close stops taking lines and lets every drain send what it holds until
// ctx ends; then it stops them all and waits for them. It returns an error
// when lines were left unsent. Stats still answers afterwards.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	clear(m.byApp)
	senders := make([]*sender, 0, len(m.drains))
	for _, s := range m.drains {
		senders = append(senders, s)
	}
	m.mu.Unlock()

	for _, s := range senders {
		close(s.closing)
	}
	flushed := make(chan struct{})
	go func() {
		m.senders.Wait()
		close(flushed)
	}()
	select {
	case <-flushed:
	case <-ctx.Done():
		for _, s := range senders {
			s.stop()
		}
		<-flushed
	}
	close(m.stopReports)
	<-m.reportsDone
	m.http.CloseIdleConnections()
	unsent := 0
	for _, s := range senders {
		s.cancel()
		unsent += s.buf.held()
	}
	if unsent > 0 {
		return fmt.Errorf("drain: %d lines left unsent: %w", unsent, context.Cause(ctx))
	}
	return nil
}

// reportDrops calls Options.OnDrop with each drain's drops, at most once
// per drain per DropReportInterval, until stopReports closes.
func (m *Manager) reportDrops() {
	interval := m.opts.DropReportInterval
	last := map[*sender]time.Time{} // when each drain was last reported
	timer := time.NewTimer(interval)
	timer.Stop()
	defer timer.Stop()
	type report struct {
		appID, drainID string
		n              uint64
	}
	for {
		now := time.Now()
		var due []report
		var next time.Time
		m.mu.RLock()
		for _, s := range m.drains {
			if !s.buf.hasUnreported() {
				continue
			}
			if at := last[s].Add(interval); now.Before(at) {
				if next.IsZero() || at.Before(next) {
					next = at
				}
				continue
			}
			last[s] = now
			due = append(due, report{s.drain.AppID, s.drain.ID, s.buf.takeUnreported()})
		}
		m.mu.RUnlock()
		for s, at := range last {
			if now.Sub(at) >= interval {
				delete(last, s) // its next drop may be reported at once
			}
		}
		if m.opts.OnDrop != nil {
			for _, r := range due {
				m.opts.OnDrop(r.appID, r.drainID, r.n)
			}
		}
		if !next.IsZero() {
			timer.Reset(time.Until(next))
		}
		select {
		case <-m.dropped:
		case <-timer.C:
		case <-m.stopReports:
			return
		}
	}
}

// transport delivers batches of lines to one drain's receiver.
type transport interface {
	// send delivers batch in order. After an error the receiver may
	// have none, some or all of it: the batch is sent again.
	send(ctx context.Context, batch []logaggregator.Line) error
	// close lets go of any connection.
	close()
}

// sender is one drain's buffer and the goroutine that empties it.
type sender struct {
	drain      controller.LogDrain
	buf        *buffer
	t          transport
	opts       *Options
	log        *slog.Logger
	batchLines int
	// batchWait, when set, is how long to wait for a batch to fill.
	batchWait time.Duration
	// cancel stops the sender at once; closing asks it to stop once its
	// buffer is empty.
	cancel  context.CancelFunc
	closing chan struct{}

	mu        sync.Mutex
	failures  uint64
	lastErr   string
	lastErrAt time.Time
	failing   bool
}

// stop ends the sender without waiting for it.
func (s *sender) stop() { s.cancel() }

// run sends the buffer's lines until ctx ends, or closing is closed and
// every line is sent.
func (s *sender) run(ctx context.Context) {
	var batch []logaggregator.Line
	var backoff time.Duration
	var retry *time.Timer
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		if len(batch) == 0 {
			var ok bool
			if batch, ok = s.nextBatch(ctx, batch); !ok {
				return
			}
		}
		err := s.t.send(ctx, batch)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			s.buf.delivered(len(batch))
			clear(batch)
			batch = batch[:0]
			backoff = 0
			s.succeeded()
			continue
		}
		s.failed(err)
		backoff = min(max(2*backoff, s.opts.MinBackoff), s.opts.MaxBackoff)
		if retry == nil {
			retry = time.NewTimer(backoff)
		} else {
			retry.Reset(backoff)
		}
		select {
		case <-retry.C:
		case <-ctx.Done():
			return
		}
	}
}

// nextBatch waits for lines and takes a batch of them into batch (empty),
// waiting up to batchWait for it to fill. It returns false when the
// sender is to stop.
func (s *sender) nextBatch(ctx context.Context, batch []logaggregator.Line) ([]logaggregator.Line, bool) {
	for {
		if batch = s.buf.take(batch, s.batchLines, maxBatchBytes); len(batch) > 0 {
			break
		}
		select {
		case <-s.buf.ready:
		case <-s.closing:
			// Nothing is added after closing: an empty buffer stays so.
			if s.buf.waiting() == 0 {
				return batch, false
			}
		case <-ctx.Done():
			return batch, false
		}
	}
	if s.batchWait <= 0 || len(batch) >= s.batchLines {
		return batch, true
	}
	fill := time.NewTimer(s.batchWait)
	defer fill.Stop()
	for len(batch) < s.batchLines {
		select {
		case <-s.buf.ready:
			n := len(batch)
			if batch = s.buf.take(batch, s.batchLines, maxBatchBytes); len(batch) == n && s.buf.waiting() > 0 {
				return batch, true // the next line would pass maxBatchBytes
			}
		case <-fill.C:
			return batch, true
		case <-s.closing:
			return s.buf.take(batch, s.batchLines, maxBatchBytes), true
		case <-ctx.Done():
			return batch, false
		}
	}
	return batch, true
}

func (s *sender) failed(err error) {
	s.mu.Lock()
	s.failures++
	s.lastErr, s.lastErrAt = err.Error(), time.Now()
	first := !s.failing
	s.failing = true
	s.mu.Unlock()
	if first {
		s.log.Warn("log drain failing; its lines wait in its buffer", "err", err)
	} else {
		s.log.Debug("log drain still failing", "err", err)
	}
}

func (s *sender) succeeded() {
	s.mu.Lock()
	was := s.failing
	s.failing = false
	s.mu.Unlock()
	if was {
		s.log.Info("log drain sending again")
	}
}

func (s *sender) stats() logaggregator.DrainStats {
	sent, dropped := s.buf.counts()
	s.mu.Lock()
	defer s.mu.Unlock()
	return logaggregator.DrainStats{
		DrainID: s.drain.ID, AppID: s.drain.AppID,
		Sent: sent, Dropped: dropped,
		Failures: s.failures, LastError: s.lastErr, LastErrorAt: s.lastErrAt,
	}
}
