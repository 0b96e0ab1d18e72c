package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/logaggregator/drain/draintest"
	"github.com/openflynn/flynn/pkg/poll"
)

// fakeDrains is the controller as the aggregator sees it: a list of
// drains and an event stream saying when it changed.
type fakeDrains struct {
	mu     sync.Mutex
	drains []*controller.LogDrain
	events chan *controller.Event
}

func (f *fakeDrains) LogDrains(context.Context) ([]*controller.LogDrain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*controller.LogDrain(nil), f.drains...), nil
}

func (f *fakeDrains) StreamEvents(context.Context, controller.EventFilter) (<-chan *controller.Event, error) {
	return f.events, nil
}

func (f *fakeDrains) add(d *controller.LogDrain) {
	f.mu.Lock()
	f.drains = append(f.drains, d)
	f.mu.Unlock()
	f.events <- &controller.Event{ObjectType: controller.ObjectTypeLogDrain}
}

// TestDrainGetsEveryLineInOrder: a drain added while the aggregator runs
// gets its app's lines from then on, in order, and only its app's; its
// counts are served.
func TestDrainGetsEveryLineInOrder(t *testing.T) {
	recv := draintest.NewSyslog(t)
	src := &fakeDrains{events: make(chan *controller.Event, 1)}
	c, stop := start(t, Config{Drains: src, DrainResync: time.Hour})
	defer stop()
	src.add(&controller.LogDrain{ID: "d1", AppID: "a", URL: "syslog+tcp://" + recv.Addr()})
	poll.UntilNil(t, 10*time.Second, "the drain running", func() error {
		st, err := c.DrainStats(context.Background())
		if err != nil || len(st) != 1 {
			return fmt.Errorf("stats %v, %v", st, err)
		}
		return nil
	})
	const n = 1000
	for i := 0; i < n; i += 100 {
		var batch []logaggregator.Line
		for j := i; j < i+100; j++ {
			batch = append(batch, line("a", "j", fmt.Sprintf("line %d", j)), line("b", "j", "another app's"))
		}
		if err := c.Post(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 10*time.Second, "every line drained", func() bool { return len(recv.Messages()) >= n })
	got := recv.Messages()
	if len(got) != n {
		t.Fatalf("drained %d lines, want %d", len(got), n)
	}
	for i, m := range got {
		if m != fmt.Sprintf("line %d", i) {
			t.Fatalf("message %d is %q", i, m)
		}
	}
	st, err := c.DrainStats(context.Background())
	if err != nil || len(st) != 1 || st[0].Sent != n || st[0].Dropped != 0 {
		t.Fatalf("stats %+v, %v", st, err)
	}
}
