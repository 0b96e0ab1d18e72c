package docker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestDirUsage(t *testing.T) {
	root := t.TempDir()
	write := func(name string, size int) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a/big", 1<<20)
	write("a/b/c/deep", 256<<10)
	if err := os.Link(filepath.Join(root, "a/big"), filepath.Join(root, "big-again")); err != nil {
		t.Fatal(err)
	}
	// A sparse file uses no disk for its hole.
	f, err := os.Create(filepath.Join(root, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()

	ctx := context.Background()
	all, err := dirUsage(ctx, root, 0)
	if err != nil {
		t.Fatal(err)
	}
	// 1 MiB + 256 KiB of data, the hard link once, and a few entries of 4 KiB.
	if lo, hi := int64(1<<20+256<<10), int64(1<<20+256<<10+10*minEntryCost); all < lo || all > hi {
		t.Fatalf("usage = %d, want between %d and %d", all, lo, hi)
	}

	// Many empty files cost an entry each, and the walk stops past the limit.
	for i := range 1000 {
		write(fmt.Sprintf("many/%04d", i), 0)
	}
	limit := int64(100 * minEntryCost)
	bounded, err := dirUsage(ctx, filepath.Join(root, "many"), limit)
	if err != nil {
		t.Fatal(err)
	}
	if bounded <= limit || bounded > limit+minEntryCost {
		t.Fatalf("bounded usage = %d, want just past the limit %d", bounded, limit)
	}
	full, _ := dirUsage(ctx, filepath.Join(root, "many"), 0)
	if full != 1000*minEntryCost {
		t.Fatalf("usage of 1000 empty files = %d, want %d", full, 1000*minEntryCost)
	}

	if _, err := dirUsage(ctx, filepath.Join(root, "gone"), 0); err == nil {
		t.Fatal("usage of a missing directory: no error")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := dirUsage(cancelled, root, 0); err == nil {
		t.Fatal("usage with a cancelled context: no error")
	}
}
