package gitreceive

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/poll"
)

// waiter acquires a slot in the background and reports it on got.
type waiter struct {
	got    chan func()
	err    chan error
	cancel context.CancelFunc
}

func startWaiter(t *testing.T, s *buildSlots, waiting int) *waiter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := &waiter{got: make(chan func(), 1), err: make(chan error, 1), cancel: cancel}
	go func() {
		release, err := s.acquire(ctx, nil)
		if err != nil {
			w.err <- err
			return
		}
		w.got <- release
	}()
	poll.Until(t, 5*time.Second, "the waiter to queue", func() bool { _, n := s.stats(); return n == waiting })
	return w
}

func (w *waiter) mustGet(t *testing.T) func() {
	t.Helper()
	select {
	case release := <-w.got:
		return release
	case err := <-w.err:
		t.Fatalf("waiter failed: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("waiter got no slot")
	}
	return nil
}

func (w *waiter) mustWait(t *testing.T) {
	t.Helper()
	select {
	case <-w.got:
		t.Fatal("waiter got a slot out of turn")
	default:
	}
}

func TestBuildSlotsQueueInOrder(t *testing.T) {
	s := newBuildSlots(2)
	var waitedWith int
	r1, err := s.acquire(t.Context(), func(int) { t.Fatal("first build waited") })
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := s.acquire(t.Context(), nil)
	a := startWaiter(t, s, 1)
	b := startWaiter(t, s, 2)
	gone := startWaiter(t, s, 3)
	_, _ = s.acquire(canceled(), func(n int) { waitedWith = n })
	if waitedWith != 2 {
		t.Errorf("onWait got %d running, want 2", waitedWith)
	}

	r1()
	r1() // releasing twice frees one slot
	ra := a.mustGet(t)
	b.mustWait(t)
	if running, waiting := s.stats(); running != 2 || waiting != 2 {
		t.Fatalf("running %d, waiting %d; want 2 and 2", running, waiting)
	}

	gone.cancel() // a pusher who disconnects leaves the queue
	if err := <-gone.err; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	r2()
	rb := b.mustGet(t)
	ra()
	rb()
	if running, waiting := s.stats(); running != 0 || waiting != 0 {
		t.Fatalf("after all released: running %d, waiting %d", running, waiting)
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
