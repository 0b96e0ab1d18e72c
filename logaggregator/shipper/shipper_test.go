package shipper

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/pkg/poll"
)

// fakePoster records the lines posted and fails while down.
type fakePoster struct {
	mu    sync.Mutex
	down  bool
	lines []string
	gate  chan struct{} // when set, each post waits for a value
	// posts counts the posts begun, before any wait at gate.
	posts int
}

func (p *fakePoster) PostEncoded(ctx context.Context, body []byte) error {
	p.mu.Lock()
	p.posts++
	p.mu.Unlock()
	if p.gate != nil {
		select {
		case <-p.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return errors.New("connection refused")
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var l logaggregator.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return err
		}
		p.lines = append(p.lines, l.Data)
	}
	return nil
}

func (p *fakePoster) got() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// begun returns how many posts have begun.
func (p *fakePoster) begun() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.posts
}

func (p *fakePoster) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

func run(t *testing.T, s *Shipper) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestShipsInOrderAcrossAnOutage: lines queued while the aggregator is
// down reach it, in order, once it is back.
func TestShipsInOrderAcrossAnOutage(t *testing.T) {
	p := &fakePoster{down: true}
	s := New(p, Options{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, quiet)
	stop := run(t, s)
	defer stop()
	var want []string
	for i := 0; i < 1000; i++ {
		d := fmt.Sprintf("line %d\n", i)
		want = append(want, d)
		s.Ship(logaggregator.Line{AppID: "a", Data: d})
	}
	poll.Until(t, 10*time.Second, "a failed post", func() bool { return s.Stats().FailedPosts > 0 })
	p.setDown(false)
	// The shipper counts a batch once its post returned, after the
	// aggregator has it: wait for both.
	poll.Until(t, 10*time.Second, "every line shipped", func() bool { return len(p.got()) == len(want) && s.Stats().Shipped == uint64(len(want)) })
	got := p.got()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d: %q, want %q", i, got[i], want[i])
		}
	}
	if st := s.Stats(); st.Shipped != 1000 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestFullQueueDrops: Ship never blocks; what does not fit is counted.
func TestFullQueueDrops(t *testing.T) {
	p := &fakePoster{gate: make(chan struct{})}
	s := New(p, Options{QueueLines: 10}, quiet)
	stop := run(t, s)
	s.Ship(logaggregator.Line{AppID: "a", Data: "first\n"})
	// Once the post has begun its batch is made: the lines shipped now
	// wait in the queue. (An empty queue alone would not say so: Run
	// may still be filling the batch.)
	poll.Until(t, 10*time.Second, "the first post to begin", func() bool { return p.begun() == 1 })
	for i := 0; i < 25; i++ {
		s.Ship(logaggregator.Line{AppID: "a", Data: "x\n"})
	}
	if d := s.Stats().Dropped; d != 15 {
		t.Errorf("dropped %d, want 15", d)
	}
	close(p.gate)
	poll.Until(t, 10*time.Second, "the queued lines", func() bool { return len(p.got()) == 11 })
	stop()
	if got := p.got(); got[0] != "first\n" {
		t.Errorf("the first post sent %q, want the first line alone", got[0])
	}
}

// TestRunFlushesAtTheEnd: lines queued when Run is stopped are posted.
func TestRunFlushesAtTheEnd(t *testing.T) {
	p := &fakePoster{}
	s := New(p, Options{}, quiet)
	for i := 0; i < 5; i++ {
		s.Ship(logaggregator.Line{AppID: "a", Data: "x\n"})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Run(ctx)
	if n := len(p.got()); n != 5 {
		t.Fatalf("posted %d of 5 lines at the end", n)
	}
}

// TestQueueBoundsBytes: a flood of long lines is bounded by bytes too.
func TestQueueBoundsBytes(t *testing.T) {
	s := New(&fakePoster{}, Options{QueueBytes: 100 << 10}, quiet)
	long := string(make([]byte, logaggregator.MaxLineBytes))
	for i := 0; i < 100; i++ {
		s.Ship(logaggregator.Line{AppID: "a", Data: long})
	}
	if q, d := len(s.queue), s.Stats().Dropped; q != 6 || d != 94 {
		t.Fatalf("queued %d and dropped %d of 100 lines of 16 KiB, want 6 and 94 within 100 KiB", q, d)
	}
	if got := s.queued.Load(); got != 6*logaggregator.MaxLineBytes {
		t.Errorf("queued bytes %d", got)
	}
}

// TestFullQueueKeepsTheNewest: a full queue drops its oldest lines, so the
// last lines shipped (the line after a flood) are the ones sent.
func TestFullQueueKeepsTheNewest(t *testing.T) {
	p := &fakePoster{}
	s := New(p, Options{QueueLines: 10}, quiet)
	for i := 0; i < 100; i++ {
		s.Ship(logaggregator.Line{AppID: "a", Data: fmt.Sprintf("line %d\n", i)})
	}
	if d := s.Stats().Dropped; d != 90 {
		t.Errorf("dropped %d, want 90", d)
	}
	stop := run(t, s)
	poll.Until(t, 10*time.Second, "the queue shipped", func() bool { return len(p.got()) == 10 })
	stop()
	if got := p.got(); got[0] != "line 90\n" || got[9] != "line 99\n" {
		t.Fatalf("shipped %q, want lines 90 to 99", got)
	}
}
