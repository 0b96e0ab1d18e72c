package fs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/blobstore/blobstoretest"
	"github.com/openflynn/flynn/blobstore/fs"
)

// newStore returns a store in a fresh directory and a counter of files left
// in its upload directory.
func newStore(t testing.TB) (blobstore.Backend, blobstoretest.Leftovers) {
	s, err := fs.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return s, func(context.Context) (int, error) {
		entries, err := os.ReadDir(s.TempDir())
		return len(entries), err
	}
}

func TestBehaviour(t *testing.T) {
	blobstoretest.Run(t, newStore)
}

func TestLargeStream(t *testing.T) {
	blobstoretest.RunLarge(t, newStore, blobstoretest.LargeSize)
}

// TestNothingOutsideRoot checks, beyond the suite's HTTP-level checks, that
// files only ever appear under the store's own directory.
func TestNothingOutsideRoot(t *testing.T) {
	parent := t.TempDir()
	s, err := fs.New(filepath.Join(parent, "store"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range []string{"a", "a/b", "../escape", "/abs", "a/../../escape"} {
		_, _ = s.Put(ctx, p, strings.NewReader(p)) // the bad ones must fail; checked below
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "store" {
		t.Fatalf("parent directory holds %v, want only store", entries)
	}
	var files int
	err = filepath.WalkDir(filepath.Join(parent, "store"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if files != 2 {
		t.Fatalf("store holds %d files, want 2 (a and a/b)", files)
	}
}

// TestUnfinishedUploadsCleared checks that a restart removes uploads a
// crashed process left behind.
func TestUnfinishedUploadsCleared(t *testing.T) {
	dir := t.TempDir()
	s, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.TempDir(), "put-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(s.TempDir())
	if err != nil || len(entries) != 0 {
		t.Fatalf("upload directory after restart: %v, %v; want empty", entries, err)
	}
}

// BenchmarkTransfer compares PUT and GET of a 256 MiB file with cp of it
// on the same disk; see test/bench/blobstore/run.
func BenchmarkTransfer(b *testing.B) {
	dir := b.TempDir()
	factory := func(t testing.TB) (blobstore.Backend, blobstoretest.Leftovers) {
		s, err := fs.New(filepath.Join(dir, "store"))
		if err != nil {
			t.Fatal(err)
		}
		return s, func(context.Context) (int, error) { return 0, nil }
	}
	blobstoretest.BenchTransfer(b, factory, dir, 256<<20)
}
