package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/pgtest"
	"github.com/openflynn/flynn/pkg/poll"
)

// passwordServer starts a Postgres server of its own whose pg_hba.conf
// asks every role but postgres for its password (scram-sha-256), as the
// appliance's does; pgtest's trusts everyone.
func passwordServer(t *testing.T) *pgtest.Server {
	t.Helper()
	s := pgtest.New(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var hba string
	if err := conn.QueryRow(ctx, "SHOW hba_file").Scan(&hba); err != nil {
		t.Fatal(err)
	}
	rules := "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(hba, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE ROLE probe LOGIN; SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	probe := strings.Replace(s.URL("postgres"), "postgres@", "probe@", 1)
	poll.UntilNil(t, 10*time.Second, "pg_hba.conf reloaded", func() error {
		c, err := pgx.Connect(ctx, probe)
		if err == nil {
			c.Close(ctx)
			return errors.New("a role logged in without a password")
		}
		return nil
	})
	return s
}

// provision asks the provider for a database as the controller does and
// returns the reply.
func provision(t *testing.T, hs *httptest.Server) *controller.ProvisionedResource {
	t.Helper()
	code, body := call(t, hs, http.MethodPost, "/databases", testKey, "application/json", `{"config":{}}`)
	if code != http.StatusCreated {
		t.Fatalf("POST /databases = %d %s", code, body)
	}
	var res controller.ProvisionedResource
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	return &res
}

// connect connects with the app's env, to database db when it is not
// empty, with password when it is not empty.
func connect(ctx context.Context, env map[string]string, db, password string) (*pgx.Conn, error) {
	u, err := url.Parse(env["DATABASE_URL"])
	if err != nil {
		return nil, err
	}
	if db != "" {
		u.Path = "/" + db
	}
	if password != "" {
		u.User = url.UserPassword(u.User.Username(), password)
	}
	u.RawQuery = "sslmode=disable&connect_timeout=10"
	return pgx.Connect(ctx, u.String())
}

// wantRefused checks that err is Postgres refusing the connection with
// SQLSTATE code.
func wantRefused(t *testing.T, what string, conn *pgx.Conn, err error, code string) {
	t.Helper()
	if err == nil {
		conn.Close(context.Background())
		t.Fatalf("%s: connected, want refused (%s)", what, code)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != code {
		t.Fatalf("%s: %v, want SQLSTATE %s", what, err, code)
	}
}

// TestIsolation provisions two databases and checks that each app's role
// reaches its own database with its password, and neither the other's
// database nor its own without the password; then that deleting drops
// each database and role, also under an open session.
func TestIsolation(t *testing.T) {
	s := passwordServer(t)
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	srv, err := New(NewDatabases(pool), Options{Key: testKey, Host: "127.0.0.1", Port: s.Port(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()

	a, b := provision(t, hs), provision(t, hs)
	if a.ID == b.ID || !ValidName(a.ID) || !ValidName(b.ID) {
		t.Fatalf("ids %q and %q: want two different valid names", a.ID, b.ID)
	}
	if n := len(a.Env["PGPASSWORD"]); n < 32 {
		t.Fatalf("password of %d characters, want a strong one", n)
	}
	connA, err := connect(ctx, a.Env, "", "")
	if err != nil {
		t.Fatalf("app a to its database: %v", err)
	}
	defer connA.Close(ctx)
	// The owner may do what an app does.
	var got int
	if _, err := connA.Exec(ctx, "CREATE TABLE items (v int); INSERT INTO items VALUES (42)"); err != nil {
		t.Fatalf("app a's table: %v", err)
	}
	if err := connA.QueryRow(ctx, "SELECT v FROM items").Scan(&got); err != nil || got != 42 {
		t.Fatalf("app a's queries: %d, %v", got, err)
	}
	var super, createDB, createRole bool
	if err := connA.QueryRow(ctx, "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user").Scan(&super, &createDB, &createRole); err != nil || super || createDB || createRole {
		t.Fatalf("app a's role: super %v, createdb %v, createrole %v (%v); want none", super, createDB, createRole, err)
	}

	conn, err := connect(ctx, a.Env, b.ID, "")
	wantRefused(t, "app a to b's database", conn, err, "42501") // insufficient_privilege
	conn, err = connect(ctx, b.Env, a.ID, "")
	wantRefused(t, "app b to a's database", conn, err, "42501")
	conn, err = connect(ctx, a.Env, "", b.Env["PGPASSWORD"])
	wantRefused(t, "app a with b's password", conn, err, "28P01") // invalid_password

	if code, body := call(t, hs, http.MethodDelete, "/databases/"+b.ID, testKey, "", ""); code != http.StatusNoContent {
		t.Fatalf("DELETE b = %d %s", code, body)
	}
	// a's session does not keep its database from being dropped.
	if code, body := call(t, hs, http.MethodDelete, "/databases/"+a.ID, testKey, "", ""); code != http.StatusNoContent {
		t.Fatalf("DELETE a = %d %s", code, body)
	}
	if err := connA.Ping(ctx); err == nil {
		t.Fatal("app a's session outlived its database")
	}
	var left int
	if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM pg_database WHERE datname = ANY($1)) + (SELECT count(*) FROM pg_roles WHERE rolname = ANY($1))",
		[]string{a.ID, b.ID}).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d databases and roles left (%v), want 0", left, err)
	}
	conn, err = connect(ctx, b.Env, "postgres", "")
	wantRefused(t, "app b after its deletion", conn, err, "28P01")
	for _, name := range []string{a.ID, "postgres", "template1"} {
		if code, body := call(t, hs, http.MethodDelete, "/databases/"+name, testKey, "", ""); code != http.StatusNotFound {
			t.Fatalf("DELETE %s = %d %s, want 404", name, code, body)
		}
	}
}

// sharedPool is a superuser's pool on the package's shared server.
func sharedPool(t *testing.T, user string) (*pgxpool.Pool, *pgtest.Server) {
	t.Helper()
	s := pg.Server(t)
	pool, err := pgxpool.New(t.Context(), strings.Replace(s.URL("postgres"), "postgres@", user+"@", 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, s
}

func exists(t *testing.T, pool *pgxpool.Pool, catalog, column, name string) bool {
	t.Helper()
	var ok bool
	if err := pool.QueryRow(t.Context(), fmt.Sprintf("SELECT EXISTS (SELECT 1 FROM %s WHERE %s = $1)", catalog, column), name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// A retried DELETE finishes what a failed one left (a role without its
// database), and Drop leaves alone what it did not make.
func TestDropFinishesHalfDone(t *testing.T) {
	pool, _ := sharedPool(t, "postgres")
	ctx := t.Context()
	dbs := NewDatabases(pool)
	const half, foreign = "app_00000000000000aa", "app_00000000000000bb"
	if _, err := pool.Exec(ctx, "CREATE ROLE "+half+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "CREATE DATABASE "+foreign); err != nil { // owned by postgres
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP DATABASE IF EXISTS "+foreign) })
	if err := dbs.Drop(ctx, half); err != nil {
		t.Fatalf("Drop of a role without its database: %v", err)
	}
	if exists(t, pool, "pg_roles", "rolname", half) {
		t.Fatal("the role is still there")
	}
	for _, name := range []string{half, foreign, "postgres", "APP_00000000000000AA", `app_00000000000000aa"; DROP DATABASE postgres; --`} {
		if err := dbs.Drop(ctx, name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Drop(%q) = %v, want ErrNotFound", name, err)
		}
	}
	if !exists(t, pool, "pg_database", "datname", foreign) {
		t.Fatal("Drop dropped a database it did not make")
	}
}

// A create that fails halfway leaves no role behind.
func TestCreateUndoesHalfDone(t *testing.T) {
	admin, _ := sharedPool(t, "postgres")
	ctx := t.Context()
	// A role that may create roles but not databases fails at CREATE
	// DATABASE, after its CREATE ROLE.
	if _, err := admin.Exec(ctx, "CREATE ROLE rolemaker LOGIN CREATEROLE"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP ROLE IF EXISTS rolemaker") })
	limited, _ := sharedPool(t, "rolemaker")
	db, err := NewDatabases(limited).Create(ctx)
	if err == nil || !strings.Contains(err.Error(), "create database") {
		t.Fatalf("Create = %+v, %v; want its CREATE DATABASE refused", db, err)
	}
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'app\\_%'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d app roles left (%v), want 0", n, err)
	}
}
