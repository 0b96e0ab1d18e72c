package pg_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/blobstore/blobstoretest"
	"github.com/openflynn/flynn/blobstore/pg"
	"github.com/openflynn/flynn/pkg/poll"
)

// TestSweep checks the life of a replaced version: readable by the
// downloads that opened it for KeepReplaced, then deleted by Sweep, after
// which such a download fails with ErrVersionGone instead of returning
// another version's bytes.
func TestSweep(t *testing.T) {
	url := shared.Server(t).NewDatabase(t)
	const chunkSize = 1024
	patient := newStore(t, url, chunkSize) // keeps replaced versions an hour
	eager := newStoreWith(t, url, pg.Options{ChunkSize: chunkSize, KeepReplaced: time.Microsecond})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	const path = "apps/5a1e/cache.tgz"
	v1, v2, v3 := blobstoretest.Bytes(1, 5*chunkSize+3), blobstoretest.Bytes(2, 4*chunkSize), blobstoretest.Bytes(3, 2*chunkSize+1)
	put := func(data []byte) {
		t.Helper()
		if _, err := patient.Put(ctx, path, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	put(v1)
	r1, _, err := patient.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	head := make([]byte, 10)
	if _, err := io.ReadFull(r1, head); err != nil {
		t.Fatal(err)
	}
	put(v2)
	if _, err := patient.Put(ctx, "other", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := patient.Delete(ctx, "other"); err != nil {
		t.Fatal(err)
	}

	if n, err := patient.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep within KeepReplaced = %d, %v; want 0 versions removed", n, err)
	}
	rest, err := io.ReadAll(r1)
	if err != nil {
		t.Fatalf("read the replaced version: %v", err)
	}
	if got := append(head, rest...); !bytes.Equal(got, v1) {
		t.Fatalf("replaced version read back as %d bytes, want the %d of v1", len(got), len(v1))
	}

	r2, _, err := patient.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	put(v3)
	swept := 0
	poll.Until(t, 10*time.Second, "a sweep past KeepReplaced to remove v1, v2 and other", func() bool {
		n, err := eager.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		swept += n
		return swept == 3
	})
	if _, err := io.ReadAll(r2); !errors.Is(err, pg.ErrVersionGone) {
		t.Fatalf("read of a swept version: err = %v, want ErrVersionGone", err)
	}

	r3, _, err := patient.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r3.Close()
	if got, err := io.ReadAll(r3); err != nil || !bytes.Equal(got, v3) {
		t.Fatalf("current version: %d bytes, %v; want the %d bytes of v3", len(got), err, len(v3))
	}
	chunks, retired := countRows(t, url, "blobstore_chunks"), countRows(t, url, "blobstore_retired")
	if chunks != 3 || retired != 0 {
		t.Fatalf("after the sweep: %d chunks and %d retired versions; want the 3 chunks of v3 and none retired", chunks, retired)
	}
}

func countRows(t *testing.T, url, table string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
