package gitreceive

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// recorder keeps every write a lineWriter makes.
type recorder struct{ writes []string }

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

// TestLineWriterCutsLongLines: lines up to maxLine bytes pass whole, longer
// ones in pieces of maxLine bytes, each ended with a newline.
func TestLineWriterCutsLongLines(t *testing.T) {
	long := strings.Repeat("x", maxLine)
	tests := []struct {
		name   string
		writes []string
		want   []string // what reaches out, after flush
	}{
		{name: "short lines", writes: []string{"a\nb\n", "c"}, want: []string{"a\n", "b\n", "c\n"}},
		{name: "a line of maxLine bytes stays whole", writes: []string{long[:10], long[10:] + "\n"}, want: []string{long + "\n"}},
		{name: "a longer line is cut", writes: []string{long + "yz\n"}, want: []string{long + "\n", "yz\n"}},
		{name: "cut where the bound falls in a write", writes: []string{"ab", long}, want: []string{"ab" + long[:maxLine-2] + "\n", "xx\n"}},
		{name: "a hidden line stays hidden", writes: []string{"-----> ok\nTYPES web\n", "done\n"}, want: []string{"-----> ok\n", "done\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out recorder
			l := &lineWriter{out: &out, hide: func(line string) bool { return strings.HasPrefix(line, "TYPES ") }}
			for _, w := range tt.writes {
				l.write([]byte(w))
			}
			l.flush()
			if got, want := summary(out.writes), summary(tt.want); got != want {
				t.Errorf("writes = %s, want %s", got, want)
			}
		})
	}
}

// summary shows writes briefly: long ones by their length and ends.
func summary(writes []string) string {
	var parts []string
	for _, w := range writes {
		if len(w) > 40 {
			w = fmt.Sprintf("%s…(%d bytes)…%s", w[:10], len(w), w[len(w)-10:])
		}
		parts = append(parts, fmt.Sprintf("%q", w))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// TestLineWriterLongLineStreams: a build that writes 1 MiB without a
// newline reaches the client in pieces of at most maxLine bytes while it
// writes, and the writer never holds more than maxLine bytes of it.
func TestLineWriterLongLineStreams(t *testing.T) {
	const total = 1 << 20
	for _, chunk := range []int{4 << 10, 1 << 20} { // small frames; one frame of the largest size
		var out recorder
		l := &lineWriter{out: &out}
		written := 0
		for written < total {
			n := min(chunk, total-written)
			l.write(bytes.Repeat([]byte("x"), n))
			written += n
			if c := cap(l.buf); c > maxLine+1 {
				t.Fatalf("chunks of %d: after %d bytes the writer holds a buffer of %d bytes, want at most %d", chunk, written, c, maxLine+1)
			}
			passed := 0
			for _, w := range out.writes {
				passed += len(w) - 1
			}
			if written-passed > maxLine {
				t.Fatalf("chunks of %d: %d bytes written, only %d passed on", chunk, written, passed)
			}
		}
		l.flush()
		got := 0
		for i, w := range out.writes {
			if len(w) > maxLine+1 || !strings.HasSuffix(w, "\n") || strings.Trim(w, "x\n") != "" {
				t.Fatalf("chunks of %d: piece %d is %d bytes (%q…), want at most %d bytes of x and a newline", chunk, i, len(w), w[:min(len(w), 20)], maxLine+1)
			}
			got += len(w) - 1
		}
		if got != total || len(out.writes) != total/maxLine {
			t.Fatalf("chunks of %d: %d bytes in %d pieces, want %d in %d", chunk, got, len(out.writes), total, total/maxLine)
		}
	}
}
