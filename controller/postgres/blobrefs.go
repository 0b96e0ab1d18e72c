package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// BlobReferences is what the blob collector (controller/blobgc) reads of
// the controller's state to tell used blobs from garbage.
type BlobReferences struct {
	// AppIDs holds the id of every app.
	AppIDs []string
	// Mentions holds each distinct string that contains the substring
	// asked for and appears in a release: in its env (SLUG_URL), meta or
	// process types, or in its artifact's URI or meta.
	Mentions []string
}

// BlobReferences reads the ids of every app and the strings of releases
// that contain substr, both from one snapshot, so that no app is seen
// without its releases or the other way round. It only reads.
func (s *Store) BlobReferences(ctx context.Context, substr string) (*BlobReferences, error) {
	tx, err := s.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("blob references: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	var refs BlobReferences
	rows, err := tx.Query(ctx, `SELECT id::text FROM apps`)
	if err != nil {
		return nil, fmt.Errorf("blob references: apps: %w", err)
	}
	if refs.AppIDs, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return nil, fmt.Errorf("blob references: apps: %w", err)
	}
	// Every string value anywhere in the JSON documents ('strict $.**'
	// visits each node once), whatever their shape.
	rows, err = tx.Query(ctx, `
		SELECT DISTINCT s FROM (
			SELECT v #>> '{}' AS s
			FROM releases r, jsonb_path_query(jsonb_build_array(r.env, r.meta, r.processes), 'strict $.**') v
			WHERE jsonb_typeof(v) = 'string'
			UNION ALL
			SELECT v #>> '{}'
			FROM artifacts a, jsonb_path_query(jsonb_build_array(a.uri, a.meta), 'strict $.**') v
			WHERE jsonb_typeof(v) = 'string' AND a.id IN (SELECT artifact_id FROM releases)
		) mentions
		WHERE strpos(s, $1) > 0`, substr)
	if err != nil {
		return nil, fmt.Errorf("blob references: releases: %w", err)
	}
	if refs.Mentions, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return nil, fmt.Errorf("blob references: releases: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("blob references: commit: %w", err)
	}
	return &refs, nil
}
