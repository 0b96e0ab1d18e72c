// Package poll waits in tests for a condition that no event announces: a
// container's state, a route reaching a router, an answer over the network.
// It checks at a short interval until the condition holds or a deadline
// passes, so tests never sleep for a guessed time.
package poll

import (
	"testing"
	"time"
)

// Interval is how often a condition is checked.
const Interval = 20 * time.Millisecond

// Until checks cond every Interval until it holds, and returns how long
// that took; after within it fails the test, naming what it waited for.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not true after %s", what, within)
		}
		<-tick.C
	}
	return time.Since(start)
}

// UntilNil is Until for a check that explains itself: it waits until check
// returns nil, and fails the test with the last error after within.
func UntilNil(t testing.TB, within time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	var last error
	ok := func() bool { last = check(); return last == nil }
	start := time.Now()
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for !ok() {
		if time.Since(start) > within {
			t.Fatalf("%s: not true after %s: %v", what, within, last)
		}
		<-tick.C
	}
	return time.Since(start)
}
