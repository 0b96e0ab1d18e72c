package scheduler

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/pkg/poll"
)

// fakeWatcher hands out one event channel, fed by the test, and answers
// listings with what the test set.
type fakeWatcher struct {
	events chan *discoverd.Event
	mu     sync.Mutex
	list   []*discoverd.Instance
	err    error
}

func (w *fakeWatcher) Watch(context.Context, string) (<-chan *discoverd.Event, error) {
	return w.events, nil
}

func (w *fakeWatcher) Instances(context.Context, string) ([]*discoverd.Instance, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.list, w.err
}

func (w *fakeWatcher) setList(err error, ids ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list, w.err = nil, err
	for _, id := range ids {
		w.list = append(w.list, hostInstance(id))
	}
}

func hostInstance(id string) *discoverd.Instance {
	return &discoverd.Instance{ID: "inst-" + id, Addr: "127.0.0.1:1113", Meta: map[string]string{"id": id}}
}

func (w *fakeWatcher) send(kind discoverd.EventKind, ids ...string) {
	for _, id := range ids {
		w.events <- &discoverd.Event{Kind: kind, Instance: hostInstance(id)}
	}
	if kind == discoverd.EventCurrent {
		w.events <- &discoverd.Event{Kind: kind}
	}
}

// TestWatchHostsAcrossReconnects checks the host set across the watch's
// replays: a replay (ups, then EventCurrent, as after a discoverd restart)
// keeps every host still registered, and drops one that left while the
// watch was away.
func TestWatchHostsAcrossReconnects(t *testing.T) {
	w := &fakeWatcher{events: make(chan *discoverd.Event, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		cancel()
		close(w.events)
	}()
	c, err := WatchHosts(ctx, w, "key", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	hosts := func() []string { return slices.Sorted(maps.Keys(c.Hosts())) }
	wantHosts := func(what string, want ...string) {
		t.Helper()
		poll.Until(t, 5*time.Second, what, func() bool { return slices.Equal(hosts(), want) })
	}

	w.setList(nil, "h1", "h2")
	w.send(discoverd.EventUp, "h1", "h2")
	w.send(discoverd.EventCurrent)
	wantHosts("both hosts after the first listing", "h1", "h2")
	h1 := c.Hosts()["h1"]

	// discoverd restarts: the watch replays the same set.
	w.send(discoverd.EventUp, "h1", "h2")
	w.send(discoverd.EventCurrent)
	poll.Holds(t, 200*time.Millisecond, "both hosts kept through a replay", func() bool { return slices.Equal(hosts(), []string{"h1", "h2"}) })
	if c.Hosts()["h1"] != h1 {
		t.Error("a replay replaced h1's client: the scheduler would list it again")
	}

	// h2 left while the watch was away: the replay does not name it.
	w.setList(nil, "h1")
	w.send(discoverd.EventUp, "h1")
	w.send(discoverd.EventCurrent)
	wantHosts("h2 gone after a replay without it", "h1")

	// Without a listing, the replay's ups are added to the set.
	w.setList(errors.New("discoverd away"))
	w.send(discoverd.EventUp, "h1", "h3")
	w.send(discoverd.EventCurrent)
	wantHosts("h3 added by a replay when listing fails", "h1", "h3")

	w.send(discoverd.EventDown, "h1")
	wantHosts("h1 down", "h3")
}
