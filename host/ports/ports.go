// Package ports allocates a host's job ports from its configured range.
// Several flynn-hosts on one machine get disjoint ranges, so the allocator
// only needs to know its own range and what it has handed out.
package ports

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// ErrExhausted is returned when every port of the range is taken.
var ErrExhausted = errors.New("port range exhausted")

// Allocator hands out ports from [Min, Max]. It is safe for concurrent use.
type Allocator struct {
	min, max int

	// inUse, when set, reports a port something else on the machine
	// holds (a process of a cluster taken down a moment ago, say):
	// Allocate passes over it.
	inUse func(port int) bool

	mu   sync.Mutex
	used map[int]string // port → owner (a job id)
	next int            // where the next search starts, so freed ports are not reused at once
}

// ParseRange reads "55000-55999".
func ParseRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("port range %q: want MIN-MAX", s)
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("port range %q: want MIN-MAX with 1 <= MIN <= MAX <= 65535", s)
	}
	return lo, hi, nil
}

// New returns an allocator over [lo, hi].
func New(lo, hi int) *Allocator {
	return &Allocator{min: lo, max: hi, used: map[int]string{}, next: lo}
}

// NewChecked is New with a check of each port before it is handed out:
// inUse reports a port another process holds.
func NewChecked(lo, hi int, inUse func(port int) bool) *Allocator {
	a := New(lo, hi)
	a.inUse = inUse
	return a
}

// String returns the range as "MIN-MAX".
func (a *Allocator) String() string { return fmt.Sprintf("%d-%d", a.min, a.max) }

// Allocate reserves n ports for owner, all or none.
func (a *Allocator) Allocate(owner string, n int) ([]int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	size := a.max - a.min + 1
	if n > size-len(a.used) {
		return nil, fmt.Errorf("%w: %d wanted, %d of %d-%d free", ErrExhausted, n, size-len(a.used), a.min, a.max)
	}
	got := make([]int, 0, n)
	busy := 0
	for i, p := 0, a.next; i < size && len(got) < n; i++ {
		if _, taken := a.used[p]; !taken {
			if a.inUse != nil && a.inUse(p) {
				busy++
			} else {
				got = append(got, p)
			}
		}
		if p++; p > a.max {
			p = a.min
		}
		a.next = p
	}
	if len(got) < n {
		return nil, fmt.Errorf("%w: %d wanted, %d of %d-%d free (%d held by other processes)", ErrExhausted, n, len(got), a.min, a.max, busy)
	}
	for _, p := range got {
		a.used[p] = owner
	}
	return got, nil
}

// Reserve marks specific ports as owner's: ports a job asked for by number,
// or ports of a job re-adopted after a restart. Ports outside the range are
// accepted and ignored (the range only governs allocation). It fails,
// reserving nothing, when another owner holds one of them.
func (a *Allocator) Reserve(owner string, ports ...int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range ports {
		if o, taken := a.used[p]; taken && o != owner {
			return fmt.Errorf("port %d is in use by %s", p, o)
		}
	}
	for _, p := range ports {
		if p >= a.min && p <= a.max {
			a.used[p] = owner
		}
	}
	return nil
}

// Release frees every port owner holds.
func (a *Allocator) Release(owner string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for p, o := range a.used {
		if o == owner {
			delete(a.used, p)
		}
	}
}

// Free returns how many ports of the range are free.
func (a *Allocator) Free() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.max - a.min + 1 - len(a.used)
}
