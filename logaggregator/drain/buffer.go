package drain

import (
	"sync"

	"github.com/openflynn/flynn/logaggregator"
)

// buffer holds one drain's lines until its receiver has them: at most
// limit lines, counting those taken for sending and not yet delivered (in
// flight). A line that comes when it is full pushes out the oldest line
// not in flight, so that a receiver that comes back gets the newest
// lines, in order; only when every line held is in flight does the new
// line go instead. Each line lost so is counted.
//
// Lines are copied in, so the caller may reuse its Line afterwards. The
// ring grows as lines come, up to limit, and keeps its size.
type buffer struct {
	limit int
	// ready gets a value (without blocking, so at most one waits) when a
	// line is added.
	ready chan struct{}

	mu       sync.Mutex
	ring     []logaggregator.Line
	head, n  int // the oldest line and how many there are
	inflight int
	sent     uint64
	dropped  uint64
	// unreported counts the lines dropped since takeUnreported.
	unreported uint64
}

func newBuffer(limit int) *buffer {
	return &buffer{limit: max(limit, 1), ready: make(chan struct{}, 1)}
}

// push adds a copy of l, and reports whether a line was dropped for it.
func (b *buffer) push(l *logaggregator.Line) (dropped bool) {
	b.mu.Lock()
	if b.n+b.inflight >= b.limit {
		dropped = true
		b.dropped++
		b.unreported++
		if b.n == 0 {
			b.mu.Unlock()
			return true
		}
		b.ring[b.head] = logaggregator.Line{}
		b.head = (b.head + 1) % len(b.ring)
		b.n--
	}
	if b.n == len(b.ring) {
		b.grow()
	}
	b.ring[(b.head+b.n)%len(b.ring)] = *l
	b.n++
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
	return dropped
}

// grow makes room for one more line at least, up to limit.
func (b *buffer) grow() {
	size := min(max(2*len(b.ring), 64), b.limit)
	ring := make([]logaggregator.Line, size)
	for i := range b.n {
		ring[i] = b.ring[(b.head+i)%len(b.ring)]
	}
	b.ring, b.head = ring, 0
}

// take moves the oldest lines to the end of dst, in flight now, until dst
// holds maxLines lines or the next line would make their data exceed
// maxBytes (dst gets one line at least if it has none).
func (b *buffer) take(dst []logaggregator.Line, maxLines, maxBytes int) []logaggregator.Line {
	size := 0
	for i := range dst {
		size += len(dst[i].Data)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.n > 0 && len(dst) < maxLines {
		l := &b.ring[b.head]
		if len(dst) > 0 && size+len(l.Data) > maxBytes {
			break
		}
		size += len(l.Data)
		dst = append(dst, *l)
		*l = logaggregator.Line{}
		b.head = (b.head + 1) % len(b.ring)
		b.n--
		b.inflight++
	}
	return dst
}

// delivered says the receiver has n of the lines in flight.
func (b *buffer) delivered(n int) {
	b.mu.Lock()
	b.inflight -= n
	b.sent += uint64(n)
	b.mu.Unlock()
}

// waiting counts the lines not yet taken.
func (b *buffer) waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// held counts the lines not yet delivered, in flight or not.
func (b *buffer) held() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n + b.inflight
}

// counts returns how many lines were delivered and dropped.
func (b *buffer) counts() (sent, dropped uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sent, b.dropped
}

// takeUnreported returns the lines dropped since it was last called.
func (b *buffer) takeUnreported() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.unreported
	b.unreported = 0
	return n
}

// hasUnreported reports whether lines were dropped since
// takeUnreported was last called.
func (b *buffer) hasUnreported() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.unreported > 0
}
