package history

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/poll"
)

// TestKeep: after many samples a window holds those of the last Keep,
// oldest first, and the readers drop readings that age out between
// samples.
func TestKeep(t *testing.T) {
	cases := []struct {
		name           string
		interval, keep time.Duration
		samples        int
		want           int
	}{
		{"an hour of 30s samples, and then some", 30 * time.Second, time.Hour, 200, 121},
		{"less than an hour so far", 30 * time.Second, time.Hour, 10, 10},
		{"keep shorter than the interval", 30 * time.Second, 10 * time.Second, 5, 1},
		{"defaults", 0, 0, 150, int(DefaultKeep/DefaultInterval) + 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			src := newFakeSource(clk.Now, "a")
			r, _ := newTestRecorder(src, Config{Interval: tc.interval, Keep: tc.keep, Now: clk.Now})
			for i := range tc.samples {
				if i > 0 {
					clk.Advance(r.cfg.Interval)
				}
				r.sample(t.Context())
			}

			got := r.AppReadings("a")
			if len(got) != tc.want {
				t.Fatalf("got %d app readings, want %d", len(got), tc.want)
			}
			if hosts := r.HostReadings(); len(hosts) != tc.want {
				t.Fatalf("got %d host readings, want %d", len(hosts), tc.want)
			}
			for i, m := range got {
				// Requests counts the fake's reads: the kept are the last.
				if want := float64(tc.samples - tc.want + i + 1); m.Requests != want {
					t.Fatalf("reading %d is read %v, want %v (oldest first, the last %d)", i, m.Requests, want, tc.want)
				}
			}
			if oldest := clk.Now().Sub(got[0].Time); oldest > r.cfg.Keep {
				t.Errorf("oldest reading is %s old, want at most %s", oldest, r.cfg.Keep)
			}

			clk.Advance(r.cfg.Keep + time.Second)
			if got, hosts := r.AppReadings("a"), r.HostReadings(); got != nil || hosts != nil {
				t.Errorf("Keep after the last sample: got %d app and %d host readings, want none", len(got), len(hosts))
			}
		})
	}
}

// TestDeletedApps: an app that is no longer listed loses its readings; a
// failure to list the apps drops none.
func TestDeletedApps(t *testing.T) {
	clk := newClock()
	src := newFakeSource(clk.Now, "a", "b")
	r, log := newTestRecorder(src, Config{Now: clk.Now})
	r.sample(t.Context())

	src.with(func(f *fakeSource) { f.failList = true })
	clk.Advance(DefaultInterval)
	r.sample(t.Context())
	if a, b := len(r.AppReadings("a")), len(r.AppReadings("b")); a != 1 || b != 1 {
		t.Fatalf("after a failed list: got %d and %d readings of a and b, want 1 and 1", a, b)
	}
	if !strings.Contains(log.String(), "listing apps failed") {
		t.Errorf("log does not tell of the failed list:\n%s", log)
	}
	if got := len(r.HostReadings()); got != 2 {
		t.Errorf("got %d host readings, want 2: a failed list does not stop them", got)
	}

	src.with(func(f *fakeSource) { f.failList = false })
	src.setApps("a")
	clk.Advance(DefaultInterval)
	r.sample(t.Context())
	if got := r.AppReadings("b"); got != nil {
		t.Errorf("deleted app b: got %d readings, want none", len(got))
	}
	if got := len(r.AppReadings("a")); got != 2 {
		t.Errorf("got %d readings of a, want 2", got)
	}
}

// TestFailedReads: a read that fails or hangs past its timeout is logged
// and skipped, and the others of the sample are kept.
func TestFailedReads(t *testing.T) {
	cases := []struct {
		name      string
		breakSrc  func(f *fakeSource)
		wantApps  map[string]int // readings per app
		wantHosts int
		wantLog   string
	}{
		{
			name:      "an app's read fails",
			breakSrc:  func(f *fakeSource) { f.failApps["bad"] = true },
			wantApps:  map[string]int{"good": 1, "bad": 0, "other": 1},
			wantHosts: 1,
			wantLog:   "app.id=bad",
		},
		{
			name:      "an app's read hangs",
			breakSrc:  func(f *fakeSource) { f.hangApps["bad"] = true },
			wantApps:  map[string]int{"good": 1, "bad": 0, "other": 1},
			wantHosts: 1,
			wantLog:   "app.id=bad err=\"context deadline exceeded\"",
		},
		{
			name:      "the hosts' read fails",
			breakSrc:  func(f *fakeSource) { f.failHosts = true },
			wantApps:  map[string]int{"good": 1, "bad": 1, "other": 1},
			wantHosts: 0,
			wantLog:   "reading hosts failed",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			src := newFakeSource(clk.Now, "good", "bad", "other")
			src.with(tc.breakSrc)
			// A short interval, for a short timeout of the hanging read.
			r, log := newTestRecorder(src, Config{Interval: 50 * time.Millisecond, Now: clk.Now})
			r.sample(t.Context())
			for app, want := range tc.wantApps {
				if got := len(r.AppReadings(app)); got != want {
					t.Errorf("app %s: got %d readings, want %d", app, got, want)
				}
			}
			if got := len(r.HostReadings()); got != tc.wantHosts {
				t.Errorf("got %d host readings, want %d", got, tc.wantHosts)
			}
			if !strings.Contains(log.String(), tc.wantLog) {
				t.Errorf("log lacks %q:\n%s", tc.wantLog, log)
			}
		})
	}
}

// TestReadsAreBounded: a sample reads at most maxReads apps at once, and
// reads them all.
func TestReadsAreBounded(t *testing.T) {
	var apps []string
	for i := range 3 * maxReads {
		apps = append(apps, string(rune('a'+i)))
	}
	src := newFakeSource(time.Now, apps...)
	gate := make(chan struct{})
	src.with(func(f *fakeSource) { f.gate = gate })
	r, _ := newTestRecorder(src, Config{Interval: time.Hour})

	done := make(chan struct{})
	go func() {
		defer close(done)
		r.sample(t.Context())
	}()
	poll.Until(t, 5*time.Second, "maxReads reads in flight", func() bool {
		inflight, _, _ := src.stats()
		return inflight == maxReads
	})
	close(gate)
	<-done

	if _, most, _ := src.stats(); most != maxReads {
		t.Errorf("at most %d reads were in flight at once, want %d", most, maxReads)
	}
	for _, app := range apps {
		if got := len(r.AppReadings(app)); got != 1 {
			t.Errorf("app %s: got %d readings, want 1", app, got)
		}
	}
}

// TestRun: Run samples at once and then every Interval, and returns
// promptly when ctx ends, even with a read in flight; TestMain checks that
// none of its goroutines outlive it.
func TestRun(t *testing.T) {
	cases := []struct {
		name     string
		interval time.Duration
		hang     bool   // the app's read hangs until cancelled
		until    string // what the test waits for before cancelling
		ready    func(r *Recorder, src *fakeSource) bool
	}{
		{
			name:     "samples at once",
			interval: time.Hour,
			until:    "the first sample",
			ready:    func(r *Recorder, _ *fakeSource) bool { return len(r.AppReadings("a")) == 1 },
		},
		{
			name:     "samples every interval",
			interval: 10 * time.Millisecond,
			until:    "three samples",
			ready:    func(r *Recorder, _ *fakeSource) bool { return len(r.AppReadings("a")) >= 3 },
		},
		{
			name:     "stops with a read in flight",
			interval: time.Hour,
			hang:     true,
			until:    "a read in flight",
			ready: func(_ *Recorder, src *fakeSource) bool {
				inflight, _, _ := src.stats()
				return inflight == 1
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := newFakeSource(time.Now, "a")
			src.with(func(f *fakeSource) { f.hangApps["a"] = tc.hang })
			r, log := newTestRecorder(src, Config{Interval: tc.interval})

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			poll.Until(t, 5*time.Second, tc.until, func() bool { return tc.ready(r, src) })
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return within 5s of ctx ending")
			}
			if strings.Contains(log.String(), "failed") {
				t.Errorf("reads cut short by the end of Run were logged as failures:\n%s", log)
			}
		})
	}
}

// TestConcurrentReaders: under -race, the readers may be called while Run
// samples, and what they return is the caller's to change.
func TestConcurrentReaders(t *testing.T) {
	src := newFakeSource(time.Now, "a", "b")
	r, _ := newTestRecorder(src, Config{Interval: time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = r.Run(ctx) })
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				for _, m := range r.AppReadings("a") {
					_ = m.Requests
				}
				for _, h := range r.HostReadings() {
					_ = len(h.Hosts)
				}
			}
		})
	}
	poll.Until(t, 5*time.Second, "ten samples", func() bool {
		_, _, samples := src.stats()
		return samples >= 10
	})

	got := r.AppReadings("a")
	got[0] = nil
	if again := r.AppReadings("a"); again[0] == nil {
		t.Error("changing AppReadings' slice changed the Recorder's")
	}
	hosts := r.HostReadings()
	hosts[0].Hosts = nil
	if again := r.HostReadings(); again[0].Hosts == nil {
		t.Error("changing HostReadings' slice changed the Recorder's")
	}
}
