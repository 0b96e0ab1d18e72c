// Package history keeps the dashboard's recent past. The controller's API
// answers only with the present: an app's request counts are totals since
// each router started, and GET /hosts says what the nodes run now. A graph
// of the last hour therefore needs someone to have asked every so often
// during that hour, and a Recorder does, in the background:
//
//	at once, then every Interval:
//	  Apps ──► AppMetrics(app), 8 at a time ──► one window per app
//	  HostsWithStats ─────────────────────────► the hosts' window
//
// A window holds the readings of the last Config.Keep, oldest first; an
// app's window goes when the app does. Readings are stored raw, as the
// API gave them: rates come from pairs of readings (controller's
// MetricsBetween), worked out by whoever draws them. Nothing is
// persisted, so after a restart the graphs start empty and fill again
// over Keep.
package history

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/openflynn/flynn/controller"
	"golang.org/x/sync/errgroup"
)

// DefaultInterval is Config.Interval when zero: 120 readings an hour, as
// fine as a graph a few hundred pixels wide can show.
const DefaultInterval = 30 * time.Second

// DefaultKeep is Config.Keep when zero: the hour the graphs show.
const DefaultKeep = time.Hour

// maxReads is how many apps' metrics a sample reads at once: enough that
// a cluster of a hundred apps is read in a few round trips, few enough
// that the controller, which asks every router for each, is not flooded.
const maxReads = 8

// Source is the controller's API as the Recorder reads it;
// *controller/client.Client is one.
type Source interface {
	// Apps lists the cluster's apps.
	Apps(ctx context.Context) ([]*controller.App, error)
	// AppMetrics reads the routers' totals for the app with the id.
	AppMetrics(ctx context.Context, appID string) (*controller.AppMetrics, error)
	// HostsWithStats lists the cluster's hosts with the resource usage of
	// their jobs.
	HostsWithStats(ctx context.Context) ([]*controller.Host, error)
}

// Config configures a Recorder.
type Config struct {
	// Interval is the time between samples; DefaultInterval when zero.
	// Each read of a sample may take half of it, so that a controller or
	// router that hangs delays the next sample little.
	Interval time.Duration
	// Keep is how old a reading may grow before it is dropped;
	// DefaultKeep when zero.
	Keep time.Duration
	// Now is the clock that stamps samples and ages readings; time.Now
	// when nil.
	Now func() time.Time
}

// HostReading is one sample of the cluster's hosts.
type HostReading struct {
	// Time is when the Recorder took the sample, by Config.Now.
	Time time.Time
	// Hosts are the hosts as HostsWithStats returned them.
	Hosts []*controller.Host
}

// Recorder samples a Source in the background (Run) and keeps the
// readings of the last Config.Keep for the dashboard to read, from any
// goroutine, while it runs.
type Recorder struct {
	src Source
	cfg Config
	log *slog.Logger

	mu    sync.RWMutex
	apps  map[string]*window[*controller.AppMetrics] // by app id
	hosts window[[]*controller.Host]
}

// New returns a Recorder of src with no readings yet; Run takes them.
func New(src Source, cfg Config, logger *slog.Logger) *Recorder {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Keep <= 0 {
		cfg.Keep = DefaultKeep
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Recorder{
		src:  src,
		cfg:  cfg,
		log:  logger.With("component", "history"),
		apps: map[string]*window[*controller.AppMetrics]{},
	}
}

// Run takes a sample at once and then one every Interval until ctx ends;
// it is meant to run once per Recorder. A read that fails is logged and
// skipped, so Run never fails: it returns nil when ctx ends, after the
// reads in flight have returned. A sample that takes longer than Interval
// delays the next rather than overlapping it.
func (r *Recorder) Run(ctx context.Context) error {
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	for ctx.Err() == nil {
		r.sample(ctx)
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	return nil
}

// AppReadings returns the readings of the app with the id that are no
// older than Keep, oldest first, or nil when there are none. Each
// reading's Time is the controller's. The slice is the caller's; the
// readings it points to are shared and must not be modified.
func (r *Recorder) AppReadings(appID string) []*controller.AppMetrics {
	cutoff := r.cutoff()
	r.mu.RLock()
	defer r.mu.RUnlock()
	w := r.apps[appID]
	if w == nil {
		return nil
	}
	var out []*controller.AppMetrics
	for _, s := range w.since(cutoff) {
		out = append(out, s.v)
	}
	return out
}

// HostReadings returns the samples of the hosts that are no older than
// Keep, oldest first, or nil when there are none. The slice is the
// caller's; the hosts its readings point to are shared and must not be
// modified.
func (r *Recorder) HostReadings() []HostReading {
	cutoff := r.cutoff()
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []HostReading
	for _, s := range r.hosts.since(cutoff) {
		out = append(out, HostReading{Time: s.at, Hosts: s.v})
	}
	return out
}

// cutoff is the time before which readings are too old. Readers apply it
// too, so that readings age out even while a sample hangs.
func (r *Recorder) cutoff() time.Time {
	return r.cfg.Now().Add(-r.cfg.Keep)
}

// sampled is what one sample read.
type sampled struct {
	// at is when the sample began.
	at time.Time
	// apps lists the apps that exist; nil when listing them failed, so
	// that no app's readings are dropped for a failure.
	apps []*controller.App
	// metrics holds the readings that succeeded, by app id.
	metrics map[string]*controller.AppMetrics
	// hosts is the hosts' reading; nil when it failed.
	hosts []*controller.Host
}

// sample reads the apps' metrics and the hosts at once, waits for both,
// and stores what it read.
func (r *Recorder) sample(ctx context.Context) {
	s := sampled{at: r.cfg.Now()}
	var wg sync.WaitGroup
	wg.Go(func() { s.hosts = r.readHosts(ctx) })
	s.apps, s.metrics = r.readApps(ctx)
	wg.Wait()
	r.store(s)
}

// timeout is how long each read may take.
func (r *Recorder) timeout() time.Duration { return r.cfg.Interval / 2 }

// readHosts reads the hosts; nil when that fails.
func (r *Recorder) readHosts(ctx context.Context) []*controller.Host {
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	hosts, err := r.src.HostsWithStats(ctx)
	if err != nil {
		r.warn(ctx, "reading hosts failed", "err", err)
		return nil
	}
	if hosts == nil {
		// A cluster without hosts is still a reading, unlike a failure.
		hosts = []*controller.Host{}
	}
	return hosts
}

// readApps lists the apps and reads each one's metrics, maxReads at a
// time. It returns nil apps when listing them fails, and the metrics
// that it could read.
func (r *Recorder) readApps(ctx context.Context) ([]*controller.App, map[string]*controller.AppMetrics) {
	listCtx, cancel := context.WithTimeout(ctx, r.timeout())
	apps, err := r.src.Apps(listCtx)
	cancel()
	if err != nil {
		r.warn(ctx, "listing apps failed", "err", err)
		return nil, nil
	}
	if apps == nil {
		apps = []*controller.App{}
	}
	var (
		mu      sync.Mutex
		metrics = make(map[string]*controller.AppMetrics, len(apps))
		g       errgroup.Group
	)
	g.SetLimit(maxReads)
	for _, app := range apps {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			// A failed read is logged and skipped: it stops no other.
			if m := r.readApp(ctx, app.ID); m != nil {
				mu.Lock()
				metrics[app.ID] = m
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	return apps, metrics
}

// readApp reads one app's metrics; nil when that fails.
func (r *Recorder) readApp(ctx context.Context, appID string) *controller.AppMetrics {
	callCtx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	m, err := r.src.AppMetrics(callCtx, appID)
	if err != nil {
		r.warn(ctx, "reading app metrics failed", "app.id", appID, "err", err)
		return nil
	}
	return m
}

// warn logs a failed read, unless it failed because Run is stopping.
func (r *Recorder) warn(ctx context.Context, msg string, args ...any) {
	if ctx.Err() != nil {
		return
	}
	r.log.Warn(msg, args...)
}

// store adds a sample's readings, drops the windows of apps that no
// longer exist, and trims every window to Keep.
func (r *Recorder) store(s sampled) {
	cutoff := s.at.Add(-r.cfg.Keep)
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.apps != nil {
		live := make(map[string]bool, len(s.apps))
		for _, app := range s.apps {
			live[app.ID] = true
		}
		for id := range r.apps {
			if !live[id] {
				delete(r.apps, id)
			}
		}
	}
	for id, m := range s.metrics {
		w := r.apps[id]
		if w == nil {
			w = &window[*controller.AppMetrics]{}
			r.apps[id] = w
		}
		w.add(s.at, m)
	}
	if s.hosts != nil {
		r.hosts.add(s.at, s.hosts)
	}
	for id, w := range r.apps {
		if w.trim(cutoff) == 0 {
			delete(r.apps, id)
		}
	}
	r.hosts.trim(cutoff)
}
