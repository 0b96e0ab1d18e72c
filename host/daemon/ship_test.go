package daemon

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/pkg/poll"
)

// recordingShipper keeps what it is given.
type recordingShipper struct {
	mu    sync.Mutex
	lines []logaggregator.Line
}

func (r *recordingShipper) Ship(l logaggregator.Line) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, l)
}

func (r *recordingShipper) all() []logaggregator.Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]logaggregator.Line(nil), r.lines...)
}

// TestAppJobLinesShipped: an app's job's lines go to the shipper labelled
// with the app, release, process type, job and node, after the early end
// of Docker's follower too, once each; a job of no app ships nothing.
func TestAppJobLinesShipped(t *testing.T) {
	ship := &recordingShipper{}
	h := newHarness(t, 0, 0, func(h *harness) { h.cfg.LogShipper = ship })
	app := testJob("h1-app", "early-eof")
	app.Metadata = map[string]string{
		host.MetaAppID:     "app-id",
		host.MetaAppName:   "shop",
		host.MetaReleaseID: "release-id",
		host.MetaType:      "web",
	}
	if _, err := h.d.AddJob(context.Background(), testJob("h1-platform", "run")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.AddJob(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "the app's two lines shipped", func() bool { return len(ship.all()) >= 2 })
	got := ship.all()
	if len(got) != 2 {
		t.Fatalf("shipped %d lines, want 2: %+v", len(got), got)
	}
	want := logaggregator.Line{AppID: "app-id", AppName: "shop", ReleaseID: "release-id", ProcessType: "web", JobID: "h1-app", HostID: "h1", Stream: logaggregator.StreamStdout}
	for i, data := range []string{"early-eof\n", "followed again\n"} {
		l := got[i]
		if l.Time.IsZero() {
			t.Errorf("line %d has no time", i)
		}
		l.Time = time.Time{}
		w := want
		w.Data = data
		if l != w {
			t.Errorf("line %d: %+v, want %+v", i, l, w)
		}
	}
}
