package history

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/pkg/syncbuf"
)

// The real client is a Source.
var _ Source = (*client.Client)(nil)

var _ Source = (*fakeSource)(nil)

// errFake is what a fakeSource's failing reads return.
var errFake = errors.New("fake failure")

// clock is a fake Config.Now that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeSource is a controller whose apps and failures the test sets. Its
// AppMetrics readings carry the time of its clock and count the reads of
// each app in Requests.
type fakeSource struct {
	now func() time.Time

	mu        sync.Mutex
	apps      []string
	failApps  map[string]bool // AppMetrics fails
	hangApps  map[string]bool // AppMetrics blocks until its ctx ends
	failList  bool            // Apps fails
	failHosts bool            // HostsWithStats fails
	// gate, when set, holds every AppMetrics call until it is closed.
	gate          chan struct{}
	reads         map[string]int
	inflight, max int // AppMetrics calls in flight, and the most at once
	samples       int // HostsWithStats calls returned
}

func newFakeSource(now func() time.Time, apps ...string) *fakeSource {
	return &fakeSource{
		now:      now,
		apps:     apps,
		failApps: map[string]bool{},
		hangApps: map[string]bool{},
		reads:    map[string]int{},
	}
}

func (f *fakeSource) setApps(apps ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps = apps
}

// with runs change with the fake locked, to set its fields.
func (f *fakeSource) with(change func(f *fakeSource)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// stats returns the AppMetrics calls in flight, the most there were at
// once, and how many HostsWithStats calls have returned.
func (f *fakeSource) stats() (inflight, most, samples int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inflight, f.max, f.samples
}

func (f *fakeSource) Apps(ctx context.Context) ([]*controller.App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failList {
		return nil, errFake
	}
	var apps []*controller.App
	for _, id := range f.apps {
		apps = append(apps, &controller.App{ID: id, Name: "name-" + id})
	}
	return apps, nil
}

func (f *fakeSource) AppMetrics(ctx context.Context, appID string) (*controller.AppMetrics, error) {
	f.mu.Lock()
	f.inflight++
	f.max = max(f.max, f.inflight)
	fail, hang, gate := f.failApps[appID], f.hangApps[appID], f.gate
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail {
		return nil, errFake
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads[appID]++
	return &controller.AppMetrics{Time: f.now(), Routers: 1, Requests: float64(f.reads[appID])}, nil
}

func (f *fakeSource) HostsWithStats(ctx context.Context) ([]*controller.Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.samples++
	if f.failHosts {
		return nil, errFake
	}
	return []*controller.Host{{ID: "host1", Status: controller.HostUp}}, nil
}

// newTestRecorder returns a Recorder of src whose log the test can read.
func newTestRecorder(src Source, cfg Config) (*Recorder, *syncbuf.Buffer) {
	var log syncbuf.Buffer
	return New(src, cfg, slog.New(slog.NewTextHandler(&log, nil))), &log
}
