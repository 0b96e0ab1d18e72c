// Package retry runs an operation again, with a growing delay, until it
// succeeds, fails for good, or its context ends. Daemons start beside
// what they need (Postgres, discoverd), in any order and on a busy
// machine; one that exits when its dependency is not there yet is
// started again only by the scheduler, and in bootstrap by nothing.
package retry

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Delays between attempts: First, doubling up to Max.
const (
	First = 250 * time.Millisecond
	Max   = 5 * time.Second
)

// permanent marks an error that trying again cannot help.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that Until returns it at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// Until calls fn until it returns nil, or an error made by Permanent
// (returned unwrapped), or ctx ends (the last error is returned). Each
// failure is logged at warn, naming what, and a success after failures
// at info.
func Until(ctx context.Context, logger *slog.Logger, what string, fn func(context.Context) error) error {
	delay := First
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			if attempt > 1 {
				logger.Info(what+": done", "attempts", attempt)
			}
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.err
		}
		if ctx.Err() != nil {
			return err
		}
		logger.Warn(what+": failed; trying again", "err", err, "attempt", attempt, "in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(delay*2, Max)
	}
}
