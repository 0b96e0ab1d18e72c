// Package pg stores blobs in PostgreSQL as chunked bytea rows, for clusters
// that keep all state in their database instead of on a host's disk.
//
// An upload streams its body with COPY into chunks under a fresh blob id,
// then, in the same transaction and under a per-path advisory lock, points
// the path's row at the new id and retires the version it replaces. Until
// the commit no other session sees any of it, so a reader gets the old or
// the new blob whole, an aborted upload rolls back to nothing, and
// concurrent writers to one path commit one after the other with the last
// one standing. The nonces of used single-use signed URLs are rows keyed
// by the nonce.
//
// A download holds no connection and no transaction between chunks: Open
// reads the path's row once, which pins the version (its blob id, never
// reused), and each chunk is then one short query by blob id and index.
// So a client that reads slowly, or not at all, costs the pool nothing,
// and the pool size bounds concurrent chunk fetches and uploads, not
// downloads. A replaced or deleted version stays readable because its
// chunks outlive it: Put and Delete only record it as retired, and Sweep
// deletes the chunks of versions retired more than Options.KeepReplaced
// ago. A download still reading such a version then fails with
// ErrVersionGone rather than returning bytes of another version.
//
// An upload holds one pooled connection for its duration, since its
// chunks must commit together with the switch to the new version.
package pg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openflynn/flynn/blobstore"
)

// DefaultChunkSize is the chunk size when Options.ChunkSize is zero: big
// enough that per-row overhead is small, small enough that a download
// holds little in memory.
const DefaultChunkSize = 1 << 20

// DefaultMaxConns is the pool size when the database URL sets no
// pool_max_conns: pgxpool's own default (the CPU count, at least 4) would
// let a handful of slow uploads block every other transfer.
const DefaultMaxConns = 32

// DefaultKeepReplaced is Options.KeepReplaced when zero: far longer than
// a slug or cache download takes, short enough that overwritten build
// caches do not pile up.
const DefaultKeepReplaced = time.Hour

// sweepBatch is how many retired versions one statement of Sweep deletes,
// so that no transaction grows with the backlog.
const sweepBatch = 64

// ErrVersionGone means a download outlived its version: the blob was
// replaced or deleted after it was opened, and Sweep has since deleted the
// content.
var ErrVersionGone = errors.New("the blob version being read was replaced or deleted, and its content removed")

// lockClass namespaces the blobstore's advisory locks: the first key of
// the two-key form, the path's hash being the second.
const lockClass = 0x0b10b

// Options configures a Store.
type Options struct {
	// ChunkSize is the size of the rows new blobs are split into, in bytes;
	// DefaultChunkSize when zero. Blobs keep the size they were written
	// with, so it may change between runs.
	ChunkSize int
	// DialFunc, when set, opens every connection of the pool, given the
	// URL's host name unresolved: a host like "leader.postgres.discoverd"
	// is then found by the dialer (discoverd/client.Dialer) at each
	// connection. Nil connects to the host as it is.
	DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)
	// KeepReplaced is how long the content of a replaced or deleted
	// version stays readable for the downloads that opened it before
	// Sweep may delete it; DefaultKeepReplaced when zero.
	KeepReplaced time.Duration
}

// Store is a Postgres blob backend.
type Store struct {
	pool         *pgxpool.Pool
	chunkSize    int
	keepReplaced time.Duration
}

var _ blobstore.Backend = (*Store)(nil)

// Open connects to the database at url. Call Migrate before use and Close
// when done.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pg store: parse database url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	if opts.DialFunc != nil {
		cfg.ConnConfig.DialFunc = opts.DialFunc
		// pgx would look the host up in DNS before dialing.
		cfg.ConnConfig.LookupFunc = func(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pg store: %w", err)
	}
	return New(pool, opts), nil
}

// New returns a store over an existing pool, which the caller closes.
func New(pool *pgxpool.Pool, opts Options) *Store {
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.KeepReplaced <= 0 {
		opts.KeepReplaced = DefaultKeepReplaced
	}
	return &Store{pool: pool, chunkSize: opts.ChunkSize, keepReplaced: opts.KeepReplaced}
}

// Close closes the store's pool.
func (s *Store) Close() { s.pool.Close() }

// Put implements blobstore.Backend.
func (s *Store) Put(ctx context.Context, p string, r io.Reader) (blobstore.Info, error) {
	if err := blobstore.ValidatePath(p); err != nil {
		return blobstore.Info{}, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return blobstore.Info{}, fmt.Errorf("put %s: begin: %w", p, err)
	}
	defer rollback(ctx, tx)

	var id int64
	if err := tx.QueryRow(ctx, `SELECT nextval('blobstore_blob_ids')`).Scan(&id); err != nil {
		return blobstore.Info{}, fmt.Errorf("put %s: new blob id: %w", p, err)
	}
	src := &chunkSource{r: r, blobID: id, buf: make([]byte, s.chunkSize), hash: sha256.New()}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"blobstore_chunks"}, []string{"blob_id", "n", "data"}, src)
	if src.err != nil {
		// The body failed (client gone, over the limit): report that, not
		// how COPY relayed it.
		return blobstore.Info{}, fmt.Errorf("put %s: %w", p, src.err)
	}
	if err != nil {
		return blobstore.Info{}, fmt.Errorf("put %s: copy chunks: %w", p, err)
	}

	info := blobstore.Info{Path: p, Size: src.size, ETag: hex.EncodeToString(src.hash.Sum(nil))}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockClass, p); err != nil {
		return blobstore.Info{}, fmt.Errorf("put %s: lock: %w", p, err)
	}
	// Under the lock, and with a fresh snapshot per statement (READ
	// COMMITTED), this sees the version the last committed writer left.
	var oldID int64
	err = tx.QueryRow(ctx, `SELECT blob_id FROM blobstore_blobs WHERE path = $1`, p).Scan(&oldID)
	hadOld := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return blobstore.Info{}, fmt.Errorf("put %s: read current version: %w", p, err)
	}
	err = tx.QueryRow(ctx, `
		INSERT INTO blobstore_blobs (path, blob_id, size, sha256, chunk_size, modified_at)
		VALUES ($1, $2, $3, $4, $5, now())
		ON CONFLICT (path) DO UPDATE SET blob_id = excluded.blob_id, size = excluded.size,
			sha256 = excluded.sha256, chunk_size = excluded.chunk_size, modified_at = excluded.modified_at
		RETURNING modified_at`,
		p, id, info.Size, info.ETag, s.chunkSize).Scan(&info.ModTime)
	if err != nil {
		return blobstore.Info{}, fmt.Errorf("put %s: record blob: %w", p, err)
	}
	if hadOld {
		if err := retire(ctx, tx, oldID); err != nil {
			return blobstore.Info{}, fmt.Errorf("put %s: replaced version: %w", p, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return blobstore.Info{}, fmt.Errorf("put %s: commit: %w", p, err)
	}
	info.ModTime = info.ModTime.UTC()
	return info, nil
}

// Open implements blobstore.Backend. It reads the blob's row and returns;
// the reader fetches each chunk with a query of its own when it gets to it.
func (s *Store) Open(ctx context.Context, p string) (io.ReadSeekCloser, blobstore.Info, error) {
	if err := blobstore.ValidatePath(p); err != nil {
		return nil, blobstore.Info{}, err
	}
	r := &chunkReader{ctx: ctx, pool: s.pool, path: p, loaded: -1}
	info := blobstore.Info{Path: p}
	err := s.pool.QueryRow(ctx, `SELECT blob_id, size, sha256, chunk_size, modified_at FROM blobstore_blobs WHERE path = $1`, p).
		Scan(&r.blobID, &info.Size, &info.ETag, &r.chunkSize, &info.ModTime)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, blobstore.Info{}, fmt.Errorf("open %s: %w", p, blobstore.ErrNotFound)
	}
	if err != nil {
		return nil, blobstore.Info{}, fmt.Errorf("open %s: %w", p, err)
	}
	info.ModTime = info.ModTime.UTC()
	r.size = info.Size
	return r, info, nil
}

// Delete implements blobstore.Backend.
func (s *Store) Delete(ctx context.Context, p string) error {
	if err := blobstore.ValidatePath(p); err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("delete %s: begin: %w", p, err)
	}
	defer rollback(ctx, tx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockClass, p); err != nil {
		return fmt.Errorf("delete %s: lock: %w", p, err)
	}
	var id int64
	err = tx.QueryRow(ctx, `DELETE FROM blobstore_blobs WHERE path = $1 RETURNING blob_id`, p).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("delete %s: %w", p, blobstore.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", p, err)
	}
	if err := retire(ctx, tx, id); err != nil {
		return fmt.Errorf("delete %s: %w", p, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("delete %s: commit: %w", p, err)
	}
	return nil
}

// List implements blobstore.Backend. Paths compare bytewise (COLLATE "C"),
// whatever the database's collation, as the interface requires.
func (s *Store) List(ctx context.Context, prefix, after string, limit int) ([]blobstore.Info, error) {
	for _, p := range []string{prefix, after} {
		if err := blobstore.ValidatePrefix(p); err != nil {
			return nil, err
		}
	}
	limit = max(1, min(limit, blobstore.MaxListLimit))
	rows, err := s.pool.Query(ctx, `SELECT path, size, sha256, modified_at FROM blobstore_blobs
		WHERE starts_with(path, $1) AND path COLLATE "C" > $2
		ORDER BY path COLLATE "C" LIMIT $3`, prefix, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (blobstore.Info, error) {
		var info blobstore.Info
		err := row.Scan(&info.Path, &info.Size, &info.ETag, &info.ModTime)
		info.ModTime = info.ModTime.UTC()
		return info, err
	})
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	return list, nil
}

// ClaimNonce implements blobstore.Backend: the nonce's row is inserted
// unless it exists, which the primary key decides atomically, after the
// rows of expired nonces are deleted.
func (s *Store) ClaimNonce(ctx context.Context, nonce string, expires time.Time) error {
	if err := blobstore.ValidateNonce(nonce); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM blobstore_nonces WHERE expires_at < now()`); err != nil {
		return fmt.Errorf("forget expired nonces: %w", err)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO blobstore_nonces (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING`, nonce, expires)
	if err != nil {
		return fmt.Errorf("claim nonce: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("claim nonce %s: %w", nonce, blobstore.ErrNonceUsed)
	}
	return nil
}

// retire records that version id is no longer any path's, so that Sweep
// deletes its chunks once the downloads that opened it have had their
// time.
func retire(ctx context.Context, tx pgx.Tx, id int64) error {
	if _, err := tx.Exec(ctx, `INSERT INTO blobstore_retired (blob_id) VALUES ($1)`, id); err != nil {
		return fmt.Errorf("retire version %d: %w", id, err)
	}
	return nil
}

// Sweep deletes the chunks of the versions retired more than
// Options.KeepReplaced ago, a batch of versions per statement, and returns
// how many versions it removed. The server runs it periodically; running
// it concurrently, from several processes, is safe.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	var total int
	for {
		var n int
		err := s.pool.QueryRow(ctx, `
			WITH gone AS (
				DELETE FROM blobstore_retired WHERE blob_id IN (
					SELECT blob_id FROM blobstore_retired
					WHERE retired_at < now() - $1 * interval '1 microsecond'
					ORDER BY retired_at LIMIT $2
					FOR UPDATE SKIP LOCKED)
				RETURNING blob_id
			), chunks AS (
				DELETE FROM blobstore_chunks WHERE blob_id IN (SELECT blob_id FROM gone)
			)
			SELECT count(*) FROM gone`, s.keepReplaced.Microseconds(), sweepBatch).Scan(&n)
		if err != nil {
			return total, fmt.Errorf("sweep retired versions: %w", err)
		}
		total += n
		if n < sweepBatch {
			return total, nil
		}
	}
}

// rollback ends tx if it is still open. It runs even when ctx is cancelled
// (a client that went away), so the connection goes back to the pool clean
// instead of being closed.
func rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = tx.Rollback(ctx) // after a commit this is a no-op; otherwise nothing to report to
}

// chunkSource feeds COPY one row per chunk read from the upload body,
// hashing as it goes. It reuses one buffer: COPY encodes each row before
// asking for the next.
type chunkSource struct {
	r      io.Reader
	blobID int64
	buf    []byte
	cur    []byte
	n      int32
	next   int32
	size   int64
	hash   hash.Hash
	eof    bool
	err    error
}

var _ pgx.CopyFromSource = (*chunkSource)(nil)

func (c *chunkSource) Next() bool {
	if c.eof || c.err != nil {
		return false
	}
	m, err := io.ReadFull(c.r, c.buf)
	switch {
	case err == io.EOF:
		return false
	case err == io.ErrUnexpectedEOF:
		c.eof = true // a short last chunk
	case err != nil:
		c.err = err
		return false
	}
	c.cur = c.buf[:m]
	c.hash.Write(c.cur)
	c.size += int64(m)
	c.n = c.next
	c.next++
	return true
}

func (c *chunkSource) Values() ([]any, error) { return []any{c.blobID, c.n, c.cur}, nil }

func (c *chunkSource) Err() error { return c.err }

// chunkReader reads one blob version chunk by chunk, a query per chunk,
// holding nothing in the database between them.
//
// It keeps the context of the Open call because io.Reader methods take
// none: the reader lives only as long as the request that opened it, and
// that request's cancellation must stop its queries.
type chunkReader struct {
	ctx       context.Context
	pool      *pgxpool.Pool
	path      string
	blobID    int64
	size      int64
	chunkSize int64
	pos       int64
	loaded    int64 // index of the chunk in buf, -1 for none
	buf       chunkBuf
}

func (r *chunkReader) Read(b []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	idx := r.pos / r.chunkSize
	if idx != r.loaded {
		if err := r.load(idx); err != nil {
			return 0, err
		}
	}
	n := copy(b, r.buf[r.pos-idx*r.chunkSize:])
	r.pos += int64(n)
	return n, nil
}

// load fetches chunk idx of the pinned version. The blob id names that
// version alone, so a chunk that is missing means the version was swept,
// never that another version took its place.
func (r *chunkReader) load(idx int64) error {
	r.loaded = -1
	err := r.pool.QueryRow(r.ctx, `SELECT data FROM blobstore_chunks WHERE blob_id = $1 AND n = $2`, r.blobID, idx).Scan(&r.buf)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read %s: chunk %d of version %d: %w", r.path, idx, r.blobID, ErrVersionGone)
	}
	if err != nil {
		return fmt.Errorf("read %s: chunk %d of version %d: %w", r.path, idx, r.blobID, err)
	}
	want := min(r.chunkSize, r.size-idx*r.chunkSize)
	if int64(len(r.buf)) != want {
		return fmt.Errorf("read %s: chunk %d of version %d holds %d bytes, want %d", r.path, idx, r.blobID, len(r.buf), want)
	}
	r.loaded = idx
	return nil
}

func (r *chunkReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += r.pos
	case io.SeekEnd:
		off += r.size
	default:
		return 0, fmt.Errorf("seek: invalid whence %d", whence)
	}
	if off < 0 {
		return 0, errors.New("seek before start of blob")
	}
	r.pos = off
	return off, nil
}

// Close releases the chunk in memory; there is nothing else to release.
func (r *chunkReader) Close() error {
	r.buf = nil
	return nil
}

// chunkBuf receives bytea values into a reused buffer (pgx hands
// BytesScanner implementations its own memory to copy from).
type chunkBuf []byte

func (c *chunkBuf) ScanBytes(v []byte) error {
	*c = append((*c)[:0], v...)
	return nil
}
