// Package poll waits in tests for a condition that no event announces: a
// container's state, a route reaching a router, an answer over the network.
// It checks at a short interval until the condition holds or a deadline
// passes, so tests never sleep for a guessed time.
//
// Until and UntilNil fail the test when the deadline passes; Wait returns
// an error instead, for a helper that adds to the failure (a container's
// logs) or reports it without stopping the test. Holds is the converse
// check: a condition that must stay true for a while.
package poll

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Interval is how often a condition is checked.
const Interval = 20 * time.Millisecond

// Wait checks check every Interval until it returns nil, and then returns
// nil. When within has passed, it returns an error that wraps the last
// check's; when ctx ends first, one that wraps ctx's cause and the last
// check's error.
func Wait(ctx context.Context, within time.Duration, check func() error) error {
	start := time.Now()
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Since(start) > within {
			return fmt.Errorf("not true after %s: %w", within, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last check: %w)", context.Cause(ctx), err)
		case <-tick.C:
		}
	}
}

// errNotYet is the error Until's condition stands for while it is false.
var errNotYet = errors.New("not yet")

// Until checks cond every Interval until it holds, and returns how long
// that took; after within it fails the test, naming what it waited for.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	err := Wait(context.Background(), within, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
	if err != nil {
		t.Fatalf("%s: not true after %s", what, within)
	}
	return time.Since(start)
}

// UntilNil is Until for a check that explains itself: it waits until check
// returns nil, and fails the test with the last error after within.
func UntilNil(t testing.TB, within time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	if err := Wait(context.Background(), within, check); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return time.Since(start)
}

// Holds checks cond every Interval for d and fails the test the first time
// it is false: for what must not happen, such as a job reporting itself up
// before its port answers.
func Holds(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		if !cond() {
			t.Fatalf("%s: false after %s", what, time.Since(start).Round(time.Millisecond))
		}
		if time.Since(start) > d {
			return
		}
		<-tick.C
	}
}
