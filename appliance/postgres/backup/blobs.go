package backup

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The blobstore's database (blobstore/pg) holds the slugs the apps' releases
// run, as rows of blobstore_blobs (path → blob id) and blobstore_chunks (the
// content). A restore adds the backup's blobs to the new cluster's
// blobstore rather than replacing its database: the new cluster's own
// blobs stay, and where both have a path, the new cluster's blob is kept.
// Blob ids come from the live database's sequence, since the backup's may
// be taken there. Each blob is copied in a transaction of its own, so a
// blob is there whole or not at all, and a blobstore upload to the same
// path meanwhile wins.

type blob struct {
	path       string
	id         int64
	size       int64
	sha256     string
	chunkSize  int
	modifiedAt time.Time
}

// hasBlobTables reports whether c's database has the blobstore's tables.
func hasBlobTables(ctx context.Context, c *pgx.Conn) (bool, error) {
	var ok bool
	err := c.QueryRow(ctx, `SELECT to_regclass('blobstore_blobs') IS NOT NULL AND to_regclass('blobstore_chunks') IS NOT NULL
		AND to_regclass('blobstore_blob_ids') IS NOT NULL`).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look for the blobstore's tables: %w", err)
	}
	return ok, nil
}

// mergeBlobs copies the blobs of database from into database into where
// their path is free, and returns how many it added and how many it kept
// out because into had their path.
func mergeBlobs(ctx context.Context, srv *server, from, into string) (added, kept int, err error) {
	src, err := srv.conn(ctx, from)
	if err != nil {
		return 0, 0, err
	}
	defer src.Close(context.WithoutCancel(ctx))
	if ok, err := hasBlobTables(ctx, src); err != nil || !ok {
		return 0, 0, err // a backup of a blobstore that kept its blobs elsewhere
	}
	dst, err := srv.conn(ctx, into)
	if err != nil {
		return 0, 0, err
	}
	defer dst.Close(context.WithoutCancel(ctx))
	rows, err := src.Query(ctx, `SELECT path, blob_id, size, sha256, chunk_size, modified_at FROM blobstore_blobs ORDER BY path`)
	if err != nil {
		return 0, 0, fmt.Errorf("list the backup's blobs: %w", err)
	}
	blobs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (blob, error) {
		var b blob
		err := row.Scan(&b.path, &b.id, &b.size, &b.sha256, &b.chunkSize, &b.modifiedAt)
		return b, err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("list the backup's blobs: %w", err)
	}
	for _, b := range blobs {
		ok, err := copyBlob(ctx, src, dst, b)
		if err != nil {
			return added, kept, fmt.Errorf("restore blob %s: %w", b.path, err)
		}
		if ok {
			added++
		} else {
			kept++
		}
	}
	return added, kept, nil
}

// copyBlob copies one blob from src to dst unless dst has its path, and
// reports whether it did.
func copyBlob(ctx context.Context, src, dst *pgx.Conn, b blob) (bool, error) {
	tx, err := dst.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(ctx)
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blobstore_blobs WHERE path = $1)`, b.path).Scan(&exists); err != nil {
		return false, err
	}
	if exists {
		return false, nil
	}
	var id int64
	if err := tx.QueryRow(ctx, `SELECT nextval('blobstore_blob_ids')`).Scan(&id); err != nil {
		return false, err
	}
	rows, err := src.Query(ctx, `SELECT n, data FROM blobstore_chunks WHERE blob_id = $1 ORDER BY n`, b.id)
	if err != nil {
		return false, err
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"blobstore_chunks"}, []string{"blob_id", "n", "data"}, &chunks{rows: rows, id: id})
	rows.Close()
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return false, fmt.Errorf("copy chunks: %w", err)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO blobstore_blobs (path, blob_id, size, sha256, chunk_size, modified_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (path) DO NOTHING`, b.path, id, b.size, b.sha256, b.chunkSize, b.modifiedAt)
	if err != nil {
		return false, err
	}
	if tag.RowsAffected() == 0 {
		return false, nil // uploaded meanwhile: that one stays
	}
	return true, tx.Commit(ctx)
}

// chunks streams a blob's chunks from the backup's database into COPY, one
// chunk in memory at a time, under the blob's new id.
type chunks struct {
	rows pgx.Rows
	id   int64
	n    int32
	data []byte
	err  error
}

var _ pgx.CopyFromSource = (*chunks)(nil)

func (c *chunks) Next() bool {
	if !c.rows.Next() {
		return false
	}
	c.data = nil
	if err := c.rows.Scan(&c.n, &c.data); err != nil {
		c.err = err
		return false
	}
	return true
}

func (c *chunks) Values() ([]any, error) { return []any{c.id, c.n, c.data}, nil }

func (c *chunks) Err() error {
	if c.err != nil {
		return c.err
	}
	return c.rows.Err()
}
