package gitreceive

import (
	"context"
	"slices"
	"sync"
)

// buildSlots bounds how many builds run at once. Pushes beyond the bound
// wait in arrival order; a waiter whose context ends leaves the queue, and
// a slot freed is handed straight to the first waiter, so a newcomer never
// overtakes the queue.
type buildSlots struct {
	limit int

	mu      sync.Mutex
	running int
	queue   []chan struct{} // closed when the waiter is handed a slot
}

func newBuildSlots(limit int) *buildSlots { return &buildSlots{limit: limit} }

// acquire takes a slot, calling onWait with the number of builds running
// first if it must wait. It returns the slot's release (safe to call more
// than once) or ctx's error.
func (s *buildSlots) acquire(ctx context.Context, onWait func(running int)) (func(), error) {
	s.mu.Lock()
	if s.running < s.limit && len(s.queue) == 0 {
		s.running++
		s.mu.Unlock()
		return s.releaser(), nil
	}
	turn := make(chan struct{})
	s.queue = append(s.queue, turn)
	running := s.running
	s.mu.Unlock()

	if onWait != nil {
		onWait(running)
	}
	select {
	case <-turn:
		return s.releaser(), nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	if i := slices.Index(s.queue, turn); i >= 0 {
		s.queue = slices.Delete(s.queue, i, i+1)
		s.mu.Unlock()
		return nil, ctx.Err()
	}
	s.mu.Unlock()
	// The slot was handed over as ctx ended: pass it on.
	s.releaser()()
	return nil, ctx.Err()
}

// releaser returns the release of one acquired slot.
func (s *buildSlots) releaser() func() {
	var once sync.Once
	return func() { once.Do(s.release) }
}

func (s *buildSlots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 {
		close(s.queue[0])
		s.queue = s.queue[1:]
		return // the slot changes hands: running stays
	}
	s.running--
}

// stats returns the builds running and waiting.
func (s *buildSlots) stats() (running, waiting int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running, len(s.queue)
}
