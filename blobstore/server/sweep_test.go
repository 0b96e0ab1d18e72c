package server

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/poll"
)

// countingSweeper counts sweeps and fails every other one.
type countingSweeper struct{ n atomic.Int32 }

func (c *countingSweeper) Sweep(context.Context) (int, error) {
	if c.n.Add(1)%2 == 0 {
		return 0, errors.New("database away")
	}
	return 1, nil
}

// TestSweepLoop checks that a backend that keeps replaced versions is swept
// again and again, past a failed sweep, until the context ends.
func TestSweepLoop(t *testing.T) {
	sw := &countingSweeper{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sweepLoop(ctx, sw, time.Millisecond, slog.New(slog.DiscardHandler))
	}()
	poll.Until(t, 10*time.Second, "three sweeps", func() bool { return sw.n.Load() >= 3 })
	cancel()
	<-done
}
