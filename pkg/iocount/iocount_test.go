package iocount

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// short takes at most max bytes in all, then fails.
type short struct{ left int }

func (s *short) Write(p []byte) (int, error) {
	n := min(len(p), s.left)
	s.left -= n
	if n < len(p) {
		return n, errors.New("full")
	}
	return n, nil
}

func TestWriterCountsWhatWasTaken(t *testing.T) {
	var buf bytes.Buffer
	w := &Writer{W: &buf}
	io.WriteString(w, "hello, ")
	io.WriteString(w, "world")
	if w.N != 12 || buf.String() != "hello, world" {
		t.Fatalf("N = %d, wrote %q", w.N, buf.String())
	}
	f := &Writer{W: &short{left: 5}}
	if _, err := io.WriteString(f, "0123456789"); err == nil || f.N != 5 {
		t.Fatalf("N = %d, err %v; want 5 and an error", f.N, err)
	}
}
