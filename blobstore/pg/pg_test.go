package pg_test

import (
	"context"
	"net"
	neturl "net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/blobstore/blobstoretest"
	"github.com/openflynn/flynn/blobstore/pg"
	"github.com/openflynn/flynn/pkg/pgtest"
)

// suiteChunkSize is small so that the suite's blobs span many chunks and
// its ranges cross chunk boundaries.
const suiteChunkSize = 64 << 10

// factory returns a blobstoretest.Factory of stores, each in a fresh
// database on srv, split into chunks of chunkSize.
func factory(srv *pgtest.Server, chunkSize int) blobstoretest.Factory {
	return func(t testing.TB) (blobstore.Backend, blobstoretest.Leftovers) {
		url := srv.NewDatabase(t)
		return newStore(t, url, chunkSize), func(ctx context.Context) (int, error) { return orphanChunks(ctx, url) }
	}
}

func newStore(t testing.TB, url string, chunkSize int) *pg.Store {
	t.Helper()
	return newStoreWith(t, url, pg.Options{ChunkSize: chunkSize})
}

func newStoreWith(t testing.TB, url string, opts pg.Options) *pg.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pg.Open(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// orphanChunks counts chunks that neither a blob nor a retired version
// (which Sweep deletes later) refers to: what an aborted or replaced
// upload would leave if the store got it wrong.
func orphanChunks(ctx context.Context, url string) (int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM blobstore_chunks c
		WHERE NOT EXISTS (SELECT 1 FROM blobstore_blobs b WHERE b.blob_id = c.blob_id)
		AND NOT EXISTS (SELECT 1 FROM blobstore_retired r WHERE r.blob_id = c.blob_id)`).Scan(&n)
	return n, err
}

func TestBehaviour(t *testing.T) {
	srv := shared.Server(t)
	blobstoretest.Run(t, factory(srv, suiteChunkSize))
}

func TestLargeStream(t *testing.T) {
	srv := shared.Server(t)
	blobstoretest.RunLarge(t, factory(srv, pg.DefaultChunkSize), blobstoretest.LargeSize)
}

// TestMigrateTwice checks that migrating an up-to-date database is a no-op.
func TestMigrateTwice(t *testing.T) {
	srv := shared.Server(t)
	url := srv.NewDatabase(t)
	s := newStore(t, url, 0)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM blobstore_migrations`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("migrations recorded: %d, %v; want 3", n, err)
	}
}

// BenchmarkTransfer compares PUT and GET of a 256 MiB file through the
// Postgres backend with cp of it on the same disk (the database's too).
func BenchmarkTransfer(b *testing.B) {
	srv := shared.Server(b)
	blobstoretest.BenchTransfer(b, factory(srv, pg.DefaultChunkSize), b.TempDir(), 256<<20)
}

// TestDialFunc checks that a dial function gets the URL's host unresolved
// (a discoverd name means nothing to DNS) and carries the store's
// connections.
func TestDialFunc(t *testing.T) {
	real, err := neturl.Parse(shared.Server(t).NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	named := *real
	named.Host = "leader.postgres.discoverd"
	var dialed atomic.Value
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed.Store(addr)
		var d net.Dialer
		return d.DialContext(ctx, network, real.Host)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := pg.Open(ctx, named.String(), pg.Options{DialFunc: dial})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate over the dialed connection: %v", err)
	}
	if got, want := dialed.Load(), "leader.postgres.discoverd:5432"; got != want {
		t.Errorf("dialed %v, want %q: the URL's host unresolved, with the default port", got, want)
	}
}
