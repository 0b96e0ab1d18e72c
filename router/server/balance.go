package server

import (
	"math/rand/v2"
	"time"
)

// pick chooses a backend for a new request or connection by the power of two
// choices on in-flight counts: take two distinct backends at random and use
// the one with fewer requests in flight.
//
// Why this policy: random choice ignores load, so one slow backend keeps
// receiving its full share and piles up requests. Least-in-flight over the
// whole pool fixes that but scans every backend per request and, with several
// routers each seeing only their own traffic, makes them all dog-pile the
// same momentarily idle backend. Two random choices cost O(1), need no lock,
// and still shrink the worst backend's queue exponentially compared with
// random (Mitzenmacher, "The Power of Two Choices in Randomized Load
// Balancing"), while the randomness keeps independent routers from herding.
//
// Backends in tried are skipped (a retry goes elsewhere) and backends that
// recently refused a connection are used only when nothing else is left. It
// returns nil when every backend was tried.
func pick(bs []*backend, tried []*backend) *backend {
	n := len(bs)
	if n == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	if n == 1 {
		if contains(tried, bs[0]) {
			return nil
		}
		return bs[0]
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	a, b := bs[i], bs[j]
	aOK := a.healthy(now) && !contains(tried, a)
	bOK := b.healthy(now) && !contains(tried, b)
	switch {
	case aOK && bOK:
		if b.inflight.Load() < a.inflight.Load() {
			return b
		}
		return a
	case aOK:
		return a
	case bOK:
		return b
	}
	// Both samples were unusable: fall back to the least loaded usable
	// backend, then to any untried one.
	var best, fallback *backend
	for _, c := range bs {
		if contains(tried, c) {
			continue
		}
		if fallback == nil || c.inflight.Load() < fallback.inflight.Load() {
			fallback = c
		}
		if c.healthy(now) && (best == nil || c.inflight.Load() < best.inflight.Load()) {
			best = c
		}
	}
	if best != nil {
		return best
	}
	return fallback
}

func contains(bs []*backend, b *backend) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}
