package fs

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestCorruptFileRefused checks that a blob file whose size disagrees with
// its header is reported rather than served short.
func TestCorruptFileRefused(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Put(ctx, "x", strings.NewReader("hello world")); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(s.file("x"), int64(headerLen("x"))+5); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(ctx, "x"); err == nil {
		t.Fatal("open of a truncated blob file succeeded")
	}
}
