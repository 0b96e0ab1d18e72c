// Package migrate applies a store's SQL migrations to a PostgreSQL database,
// safely when several processes start against the same database at once.
//
// A store embeds its migrations as files named NNNN_name.sql and calls Run
// with them, the table that records the applied versions, and an advisory
// lock key of its own. Run holds that lock, as a session lock on one
// dedicated connection, for the whole run, and applies each missing
// migration in its own transaction together with its row in the table. So
// every migration is applied exactly once however many runners race, and a
// crash or a failing migration leaves the earlier ones applied and recorded
// and nothing of the one that failed.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options says where a store's migrations are and how runs are recorded and
// serialised.
type Options struct {
	// Files holds the migrations: the *.sql files at its root, each named
	// NNNN_name.sql with a positive version number. Other files are
	// ignored. A migration must not begin or commit transactions itself.
	Files fs.FS
	// Table records the applied versions (required). It is created when
	// missing; one made by an earlier runner with columns (version,
	// applied_at) or (version, name, applied_at) is used as it is, after
	// gaining the name column it may lack.
	Table string
	// Lock is the key of the session-level advisory lock
	// (pg_advisory_lock(bigint)) that serialises runners on one database.
	// Each store needs its own key; the zero key is valid.
	Lock int64
}

// Migration is one schema change.
type Migration struct {
	// Version is the number the file name starts with ("0001_initial.sql"
	// is version 1).
	Version int
	// Name is the file name.
	Name string
	// SQL is the file's content.
	SQL string
}

// Load reads the migrations in files, in version order. It refuses a file
// name that does not start with a positive number and '_', and two files
// with the same version.
func Load(files fs.FS) ([]Migration, error) {
	if files == nil {
		return nil, errors.New("migrate: no migration files")
	}
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	ms := make([]Migration, 0, len(names))
	for _, name := range names {
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || strings.ContainsAny(num, "+-") {
			return nil, fmt.Errorf("migrate: %s: name must start with a positive number and '_'", name)
		}
		sql, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(sql)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("migrate: %s and %s share version %d", ms[i-1].Name, ms[i].Name, ms[i].Version)
		}
	}
	return ms, nil
}

// Run applies the migrations in opts.Files that opts.Table does not record,
// in version order, each in its own transaction with its row in the table,
// under the advisory lock opts.Lock. It stops at the first migration that
// fails and returns its error; the ones before it stay applied.
func Run(ctx context.Context, pool *pgxpool.Pool, opts Options) (err error) {
	if opts.Table == "" {
		return errors.New("migrate: no migrations table named")
	}
	ms, err := Load(opts.Files)
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer func() {
		if err == nil {
			// The session would keep the lock if it went back to the pool
			// still holding it.
			_, err = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, opts.Lock)
			if err != nil {
				err = fmt.Errorf("migrate: unlock: %w", err)
			}
		}
		if err != nil {
			// The session's state is unknown (it may hold the lock, or be
			// inside a transaction): close it rather than pool it.
			_ = conn.Hijack().Close(context.WithoutCancel(ctx))
			return
		}
		conn.Release()
	}()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, opts.Lock); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	table := pgx.Identifier{opts.Table}.Sanitize()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
		version    integer PRIMARY KEY,
		name       text NOT NULL DEFAULT '',
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate: create %s: %w", opts.Table, err)
	}
	// Tables made by the blobstore's first runner have no name column.
	if _, err := conn.Exec(ctx, `ALTER TABLE `+table+` ADD COLUMN IF NOT EXISTS name text NOT NULL DEFAULT ''`); err != nil {
		return fmt.Errorf("migrate: add name to %s: %w", opts.Table, err)
	}
	applied, err := appliedVersions(ctx, conn.Conn(), table)
	if err != nil {
		return fmt.Errorf("migrate: read %s: %w", opts.Table, err)
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if err := apply(ctx, conn.Conn(), table, m); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
	}
	return nil
}

// apply runs m and records it in table, in one transaction.
func apply(ctx context.Context, conn *pgx.Conn, table string, m Migration) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func appliedVersions(ctx context.Context, conn *pgx.Conn, table string) (map[int]bool, error) {
	rows, err := conn.Query(ctx, `SELECT version FROM `+table)
	if err != nil {
		return nil, err
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, err
	}
	applied := make(map[int]bool, len(versions))
	for _, v := range versions {
		applied[v] = true
	}
	return applied, nil
}
