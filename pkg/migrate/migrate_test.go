package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/openflynn/flynn/pkg/migrate"
	"github.com/openflynn/flynn/pkg/pgtest"
	"github.com/openflynn/flynn/pkg/poll"
)

// One Postgres server for the package; every test gets its own database.
var shared pgtest.Shared

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(shared.Main(m))
}

// files builds a migrations directory from name → SQL pairs.
func files(kv ...string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i := 0; i < len(kv); i += 2 {
		fsys[kv[i]] = &fstest.MapFile{Data: []byte(kv[i+1])}
	}
	return fsys
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    []int // versions, in order
		wantErr bool
	}{
		{name: "version order, not name order", files: files("10_c.sql", "", "0002_b.sql", "", "1_a.sql", ""), want: []int{1, 2, 10}},
		{name: "other files ignored", files: files("0001_a.sql", "", "README.md", "", "0002_b.sql.orig", ""), want: []int{1}},
		{name: "none", files: files(), want: []int{}},
		{name: "no underscore", files: files("0001-a.sql", ""), wantErr: true},
		{name: "no number", files: files("a_b.sql", ""), wantErr: true},
		{name: "zero", files: files("0000_a.sql", ""), wantErr: true},
		{name: "negative", files: files("-1_a.sql", ""), wantErr: true},
		{name: "signed", files: files("+1_a.sql", ""), wantErr: true},
		{name: "duplicate version", files: files("1_a.sql", "", "0001_b.sql", ""), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := migrate.Load(tt.files)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Load() = %v, want an error", ms)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(): %v", err)
			}
			got := []int{}
			for _, m := range ms {
				got = append(got, m.Version)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("versions = %v, want %v", got, tt.want)
			}
		})
	}
}

// testLock is the advisory lock key of the tests' runs.
const testLock int64 = 0x6d696774657374

// counted are migrations whose effects show how often each ran: the
// second and third add a row to ran, and the third fails if run twice.
var counted = files(
	"0001_ran.sql", `CREATE TABLE ran (version int NOT NULL)`,
	"0002_two.sql", `INSERT INTO ran VALUES (2)`,
	"0003_three.sql", `INSERT INTO ran VALUES (3); CREATE TABLE three (x int)`,
)

func TestRun(t *testing.T) {
	srv := shared.Server(t)

	t.Run("from empty and again", func(t *testing.T) {
		ctx, pool := newPool(t, srv)
		opts := migrate.Options{Files: counted, Table: "schema_migrations", Lock: testLock}
		for i := range 2 {
			if err := migrate.Run(ctx, pool, opts); err != nil {
				t.Fatalf("run %d: %v", i+1, err)
			}
		}
		checkApplied(t, ctx, pool, "schema_migrations", []int{1, 2, 3})
		checkRan(t, ctx, pool, []int{2, 3})
		checkUnlocked(t, ctx, pool)
	})

	t.Run("concurrent runners apply each migration once", func(t *testing.T) {
		ctx, pool := newPool(t, srv)
		url := pool.Config().ConnString()
		const runners = 4
		errs := make(chan error, runners)
		var wg sync.WaitGroup
		for range runners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A pool each, as separate processes would have.
				p, err := pgxpool.New(ctx, url)
				if err != nil {
					errs <- err
					return
				}
				defer p.Close()
				errs <- migrate.Run(ctx, p, migrate.Options{Files: counted, Table: "schema_migrations", Lock: testLock})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("runner: %v", err)
			}
		}
		checkApplied(t, ctx, pool, "schema_migrations", []int{1, 2, 3})
		checkRan(t, ctx, pool, []int{2, 3})
		checkUnlocked(t, ctx, pool)
	})

	t.Run("a failing migration keeps the earlier ones", func(t *testing.T) {
		ctx, pool := newPool(t, srv)
		broken := files(
			"0001_ran.sql", `CREATE TABLE ran (version int NOT NULL)`,
			"0002_broken.sql", `INSERT INTO ran VALUES (2); CREATE TABLE half (x int); SELECT no_such_column FROM ran`,
			"0003_three.sql", `INSERT INTO ran VALUES (3)`,
		)
		opts := migrate.Options{Files: broken, Table: "schema_migrations", Lock: testLock}
		if err := migrate.Run(ctx, pool, opts); err == nil {
			t.Fatal("Run succeeded over a broken migration")
		}
		checkApplied(t, ctx, pool, "schema_migrations", []int{1})
		checkRan(t, ctx, pool, []int{})
		var half bool
		if err := pool.QueryRow(ctx, `SELECT to_regclass('half') IS NOT NULL`).Scan(&half); err != nil {
			t.Fatal(err)
		}
		if half {
			t.Error("the broken migration left table half behind")
		}
		checkUnlocked(t, ctx, pool)

		// Fixed, the run resumes where it stopped.
		opts.Files = files(
			"0001_ran.sql", `this would fail if run again`,
			"0002_fixed.sql", `INSERT INTO ran VALUES (2)`,
			"0003_three.sql", `INSERT INTO ran VALUES (3)`,
		)
		if err := migrate.Run(ctx, pool, opts); err != nil {
			t.Fatalf("run after the fix: %v", err)
		}
		checkApplied(t, ctx, pool, "schema_migrations", []int{1, 2, 3})
		checkRan(t, ctx, pool, []int{2, 3})
	})

	// Databases migrated by the runners this package replaced must be
	// taken as they are, nothing applied again.
	tests := []struct {
		name, table, create string
	}{
		{"controller's schema_migrations", "schema_migrations", `CREATE TABLE schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
			INSERT INTO schema_migrations (version, name) VALUES (1, '0001_ran.sql'), (2, '0002_two.sql')`},
		{"blobstore's blobstore_migrations", "blobstore_migrations", `CREATE TABLE blobstore_migrations (
			version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
			INSERT INTO blobstore_migrations (version) VALUES (1), (2)`},
	}
	for _, tt := range tests {
		t.Run("accepts the old "+tt.name, func(t *testing.T) {
			ctx, pool := newPool(t, srv)
			if _, err := pool.Exec(ctx, tt.create+`; CREATE TABLE ran (version int NOT NULL); INSERT INTO ran VALUES (2)`); err != nil {
				t.Fatal(err)
			}
			if err := migrate.Run(ctx, pool, migrate.Options{Files: counted, Table: tt.table, Lock: testLock}); err != nil {
				t.Fatal(err)
			}
			checkApplied(t, ctx, pool, tt.table, []int{1, 2, 3})
			checkRan(t, ctx, pool, []int{2, 3})
			var name string
			if err := pool.QueryRow(ctx, `SELECT name FROM `+tt.table+` WHERE version = 3`).Scan(&name); err != nil || name != "0003_three.sql" {
				t.Errorf("version 3 recorded as %q (%v), want 0003_three.sql", name, err)
			}
		})
	}

	t.Run("waits for the lock until ctx ends", func(t *testing.T) {
		ctx, pool := newPool(t, srv)
		holder, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Release()
		if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, testLock); err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			done <- migrate.Run(runCtx, pool, migrate.Options{Files: counted, Table: "schema_migrations", Lock: testLock})
		}()
		poll.Until(t, 10*time.Second, "a runner waiting for the lock", func() bool {
			var waiting bool
			err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted)`).Scan(&waiting)
			return err == nil && waiting
		})
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
		var exists bool
		if err := pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil || exists {
			t.Fatalf("schema_migrations exists = %v (%v): Run went on without the lock", exists, err)
		}
		if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock($1)`, testLock); err != nil {
			t.Fatal(err)
		}
		if err := migrate.Run(ctx, pool, migrate.Options{Files: counted, Table: "schema_migrations", Lock: testLock}); err != nil {
			t.Fatalf("run once the lock is free: %v", err)
		}
		checkApplied(t, ctx, pool, "schema_migrations", []int{1, 2, 3})
	})

	t.Run("refuses bad options", func(t *testing.T) {
		ctx, pool := newPool(t, srv)
		for name, opts := range map[string]migrate.Options{
			"no table":  {Files: counted},
			"no files":  {Table: "schema_migrations"},
			"bad files": {Files: files("x.sql", ""), Table: "schema_migrations"},
		} {
			if err := migrate.Run(ctx, pool, opts); err == nil {
				t.Errorf("%s: Run succeeded", name)
			}
		}
		var exists bool
		if err := pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil || exists {
			t.Fatalf("schema_migrations exists = %v (%v) after refused runs", exists, err)
		}
	})
}

// newPool returns a context bounded for one test and a pool on a fresh
// database of srv.
func newPool(t *testing.T, srv *pgtest.Server) (context.Context, *pgxpool.Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	pool, err := pgxpool.New(ctx, srv.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return ctx, pool
}

// checkApplied compares the versions table records with want.
func checkApplied(t *testing.T, ctx context.Context, pool *pgxpool.Pool, table string, want []int) {
	t.Helper()
	checkInts(t, ctx, pool, `SELECT version FROM `+table+` ORDER BY version`, "recorded versions", want)
}

// checkRan compares the rows the counted migrations added with want.
func checkRan(t *testing.T, ctx context.Context, pool *pgxpool.Pool, want []int) {
	t.Helper()
	checkInts(t, ctx, pool, `SELECT version FROM ran ORDER BY version`, "migrations run", want)
}

// checkUnlocked fails if any session still holds an advisory lock on
// pool's database: a run must not hand a locked connection back to the
// pool. pg_locks covers the whole server, where other tests' databases are;
// and a run that failed closed its session, whose lock stays in pg_locks
// until the backend has exited: hence the poll.
func checkUnlocked(t *testing.T, ctx context.Context, pool *pgxpool.Pool) {
	t.Helper()
	poll.UntilNil(t, 10*time.Second, "advisory locks released", func() error {
		pids, err := queryInts(ctx, pool, `SELECT pid FROM pg_locks WHERE locktype = 'advisory'
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
		if err == nil && len(pids) > 0 {
			err = fmt.Errorf("held by backends %v", pids)
		}
		return err
	})
}

func checkInts(t *testing.T, ctx context.Context, pool *pgxpool.Pool, sql, what string, want []int) {
	t.Helper()
	got, err := queryInts(ctx, pool, sql)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// queryInts returns the one int column of sql's rows.
func queryInts(ctx context.Context, pool *pgxpool.Pool, sql string) ([]int, error) {
	rows, err := pool.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	got := []int{}
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		got = append(got, n)
	}
	return got, rows.Err()
}
