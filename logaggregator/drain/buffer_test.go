package drain

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/openflynn/flynn/logaggregator"
)

func TestBuffer(t *testing.T) {
	// ops: "+N" pushes N numbered lines, "take N" takes N into flight,
	// "done" delivers what is in flight.
	tests := []struct {
		name        string
		limit       int
		ops         []string
		wantSent    []int // lines delivered, in order
		wantWaiting []int // lines still waiting, in order
		wantDropped uint64
	}{
		{name: "within the limit", limit: 5, ops: []string{"+3", "take 2", "done"}, wantSent: []int{1, 2}, wantWaiting: []int{3}},
		{name: "full drops the oldest", limit: 3, ops: []string{"+5"}, wantWaiting: []int{3, 4, 5}, wantDropped: 2},
		{
			name: "lines in flight count, and are not dropped", limit: 4,
			ops:      []string{"+4", "take 2", "+3", "done"},
			wantSent: []int{1, 2}, wantWaiting: []int{6, 7}, wantDropped: 3,
		},
		{
			name: "all in flight: the new line goes", limit: 2,
			ops:      []string{"+2", "take 2", "+1", "done", "+1"},
			wantSent: []int{1, 2}, wantWaiting: []int{4}, wantDropped: 1,
		},
		{
			name: "the ring grows and wraps in order", limit: 200,
			ops:      []string{"+70", "take 60", "done", "+100", "take 50", "done", "+100"},
			wantSent: seq(1, 110), wantWaiting: seq(111, 270),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBuffer(tt.limit)
			next := 1
			var flight, sent []logaggregator.Line
			for _, op := range tt.ops {
				switch {
				case strings.HasPrefix(op, "+"):
					n, _ := strconv.Atoi(op[1:])
					for range n {
						b.push(&logaggregator.Line{Data: strconv.Itoa(next)})
						next++
					}
				case strings.HasPrefix(op, "take "):
					n, _ := strconv.Atoi(op[5:])
					flight = b.take(flight, len(flight)+n, maxBatchBytes)
				case op == "done":
					b.delivered(len(flight))
					sent = append(sent, flight...)
					flight = nil
				}
			}
			if got := numbers(sent); !slices.Equal(got, tt.wantSent) {
				t.Errorf("sent %v, want %v", got, tt.wantSent)
			}
			if got := numbers(b.take(nil, 1<<30, 1<<30)); !slices.Equal(got, tt.wantWaiting) {
				t.Errorf("waiting %v, want %v", got, tt.wantWaiting)
			}
			gotSent, gotDropped := b.counts()
			if gotSent != uint64(len(tt.wantSent)) || gotDropped != tt.wantDropped {
				t.Errorf("counts = %d sent, %d dropped; want %d, %d", gotSent, gotDropped, len(tt.wantSent), tt.wantDropped)
			}
			if n := b.takeUnreported(); n != tt.wantDropped || b.hasUnreported() {
				t.Errorf("unreported = %d, want %d and none after", n, tt.wantDropped)
			}
		})
	}
}

// TestBufferTakeBytes: a batch stops before the line that would make it
// too big, but takes a line bigger than the bound when it is the first.
func TestBufferTakeBytes(t *testing.T) {
	b := newBuffer(10)
	for _, n := range []int{10, 10, 30, 5} {
		b.push(&logaggregator.Line{Data: strings.Repeat("x", n)})
	}
	if got := b.take(nil, 10, 25); len(got) != 2 {
		t.Fatalf("took %d lines, want the 2 that fit in 25 bytes", len(got))
	}
	if got := b.take(nil, 10, 25); len(got) != 1 || len(got[0].Data) != 30 {
		t.Fatalf("took %d lines, want the 30-byte one alone", len(got))
	}
	if b.held() != 4 || b.waiting() != 1 {
		t.Fatalf("held %d, waiting %d; want 4 and 1", b.held(), b.waiting())
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func numbers(lines []logaggregator.Line) []int {
	var out []int
	for _, l := range lines {
		n, _ := strconv.Atoi(l.Data)
		out = append(out, n)
	}
	return out
}
