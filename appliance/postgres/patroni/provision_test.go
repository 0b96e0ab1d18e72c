package patroni

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/pkg/scram"
)

// Postgres and flynn-postgres agree on verifiers: one Postgres makes
// matches the password, and one flynn-postgres makes is what Postgres
// stores. Then roles and databases are provisioned once, and again
// without change.
func TestProvisionAgainstPostgres(t *testing.T) {
	srv := pg.Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, srv.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	stored := func(role string) string {
		t.Helper()
		var s string
		if err := conn.QueryRow(ctx, "SELECT coalesce((SELECT rolpassword FROM pg_authid WHERE rolname = $1), '')", role).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	if _, err := conn.Exec(ctx, "SET password_encryption = 'scram-sha-256'; CREATE ROLE scram_pg LOGIN PASSWORD 'pencil'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "DROP ROLE IF EXISTS scram_pg") })
	if s := stored("scram_pg"); !scram.Matches(s, "pencil") || scram.Matches(s, "pen") {
		t.Errorf("Postgres's verifier %q: matches pencil %v, pen %v; want true, false", s, scram.Matches(s, "pencil"), scram.Matches(s, "pen"))
	}

	// setRolePassword creates, then changes, then leaves alone.
	const role = "provision_test"
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
	for _, step := range []struct {
		password string
		changed  bool
	}{{"first", true}, {"second", true}, {"second", false}} {
		before := stored(role)
		if err := setRolePassword(ctx, conn, role, step.password, "REPLICATION"); err != nil {
			t.Fatalf("set password %q: %v", step.password, err)
		}
		after := stored(role)
		if !scram.Matches(after, step.password) {
			t.Errorf("after setting %q Postgres stores %q", step.password, after)
		}
		if (after != before) != step.changed {
			t.Errorf("setting %q changed the verifier: %v, want %v", step.password, after != before, step.changed)
		}
	}
	var repl bool
	if err := conn.QueryRow(ctx, "SELECT rolreplication FROM pg_roles WHERE rolname = $1", role).Scan(&repl); err != nil || !repl {
		t.Errorf("role can replicate: %v, %v", repl, err)
	}

	const db = "provision_test_db"
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	for range 2 {
		if err := createDatabase(ctx, conn, db); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", db).Scan(&n); err != nil || n != 1 {
		t.Errorf("databases named %s: %d, %v", db, n, err)
	}
}
