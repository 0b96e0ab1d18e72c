package bootstrap

import (
	"context"
	"fmt"
	"time"
)

// checkTimeout bounds one look, so that an instance that accepts and
// never answers is asked again rather than waited for.
const checkTimeout = 5 * time.Second

// retry calls f every interval until it reports done, for at most timeout;
// each call is bounded by checkTimeout, so that a peer that accepts and
// never answers is asked again. f's errors count only when the time is up:
// the error then wraps the last one.
func retry(ctx context.Context, interval, timeout time.Duration, f func(ctx context.Context) (bool, error)) error {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(tctx, checkTimeout)
		done, err := f(cctx)
		ccancel()
		if done {
			return nil
		}
		// An error of the call the deadline cut short says nothing about
		// the peer.
		if err != nil && tctx.Err() == nil {
			last = err
		}
		select {
		case <-tctx.Done():
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if last != nil {
				return fmt.Errorf("gave up after %s: %w", timeout, last)
			}
			return fmt.Errorf("gave up after %s", timeout)
		case <-tick.C:
		}
	}
}
