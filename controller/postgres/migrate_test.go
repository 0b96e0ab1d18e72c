package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openflynn/flynn/pkg/pgtest"
)

func TestMigrations(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Version != 1 {
		t.Fatalf("migrations = %v, want versions from 1", ms)
	}
}

// TestMigrateFromEmptyAndAgain applies the migrations to an empty
// database, again, and from several connections at once: each run must
// leave one row per migration and working tables.
func TestMigrateFromEmptyAndAgain(t *testing.T) {
	pg := pgtest.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("from empty: %v", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("re-run: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- Migrate(ctx, pool) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent run: %v", err)
		}
	}
	ms, _ := Migrations()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
	}
	for _, table := range []string{"apps", "artifacts", "releases", "formations", "jobs", "routes", "keys", "providers", "resources", "app_resources", "deployments", "events"} {
		if _, err := pool.Exec(ctx, "SELECT 1 FROM "+table+" LIMIT 1"); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
}

// TestMigrateFailureRollsBack: a broken migration leaves nothing behind.
func TestMigrateFailureRollsBack(t *testing.T) {
	pg := pgtest.New(t)
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// A table in the way makes the first migration fail halfway.
	if _, err := pool.Exec(ctx, `CREATE TABLE deployments (x int)`); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, pool); err == nil {
		t.Fatal("Migrate succeeded over a conflicting table")
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('apps') IS NOT NULL OR to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatal("a failed migration left tables behind")
	}
}
