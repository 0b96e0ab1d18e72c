package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/openflynn/flynn/appliance/postgres/backup/archive"
	blobpg "github.com/openflynn/flynn/blobstore/pg"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testConfig(srv *pgtest.Server) Config {
	return Config{
		URL:    srv.URL("postgres"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// sqlExec runs statements on database db of srv as the superuser.
func sqlExec(t testing.TB, srv *pgtest.Server, db string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, srv.URL(db))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func queryString(t testing.TB, srv *pgtest.Server, db, sql string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, srv.URL(db))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var s string
	if err := c.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// appDatabase makes a database as flynn-postgres-api does: a role of its
// own that owns it, CONNECT revoked from everyone else, and a table with
// rows the role wrote.
func appDatabase(t testing.TB, srv *pgtest.Server, name, password string, rows ...string) {
	t.Helper()
	sqlExec(t, srv, "postgres",
		fmt.Sprintf(`CREATE ROLE %s WITH LOGIN PASSWORD '%s'`, name, password),
		fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, name, name),
		fmt.Sprintf(`REVOKE ALL ON DATABASE %s FROM PUBLIC`, name))
	stmts := []string{`SET ROLE ` + name, `CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)`}
	for _, r := range rows {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO items (name) VALUES ('%s')`, r))
	}
	sqlExec(t, srv, name, stmts...)
}

// blobstore makes the blobstore's database with the blobstore's own code,
// holding blobs.
func blobstore(t testing.TB, srv *pgtest.Server, blobs map[string]string) {
	t.Helper()
	ctx := context.Background()
	sqlExec(t, srv, "postgres", `CREATE DATABASE blobstore`)
	st, err := blobpg.Open(ctx, srv.URL("blobstore"), blobpg.Options{ChunkSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for p, content := range blobs {
		if _, err := st.Put(ctx, p, strings.NewReader(content)); err != nil {
			t.Fatal(err)
		}
	}
}

// readBlob reads a blob through the blobstore's code ("" when missing).
func readBlob(t testing.TB, srv *pgtest.Server, p string) string {
	t.Helper()
	ctx := context.Background()
	st, err := blobpg.Open(ctx, srv.URL("blobstore"), blobpg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, _, err := st.Open(ctx, p)
	if err != nil {
		return ""
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read blob %s: %v", p, err)
	}
	return string(data)
}

// state is what a restore may change on a server: its databases with
// their owners, and its roles.
func state(t testing.TB, srv *pgtest.Server) string {
	t.Helper()
	return queryString(t, srv, "postgres", `SELECT
		(SELECT string_agg(datname || ':' || pg_get_userbyid(datdba), ',' ORDER BY datname) FROM pg_database) || ' / ' ||
		(SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles)`)
}

// requirePasswords makes the server check every role's password but the
// superuser's: pgtest's servers trust everyone.
func requirePasswords(t testing.TB, srv *pgtest.Server) {
	t.Helper()
	hba := queryString(t, srv, "postgres", `SHOW hba_file`)
	conf := "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(hba, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	sqlExec(t, srv, "postgres", `SELECT pg_reload_conf()`)
}

// login connects to db as user with password and reads a row count.
func login(srv *pgtest.Server, user, password, db string) (int, error) {
	ctx := context.Background()
	url := strings.Replace(srv.URL(db), "postgres@", user+":"+password+"@", 1)
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer c.Close(ctx)
	var n int
	err = c.QueryRow(ctx, `SELECT count(*) FROM items`).Scan(&n)
	return n, err
}

// source is a cluster's server to back up: two apps' databases, the
// controller's and the blobstore's, a group role, the replication role and
// a role the restoring cluster has too.
func source(t testing.TB) *pgtest.Server {
	src := pgtest.New(t)
	appDatabase(t, src, "app_aaaa", "secret-a", "one", "two")
	appDatabase(t, src, "app_bbbb", "secret-b", "three")
	sqlExec(t, src, "postgres",
		`CREATE ROLE readers NOLOGIN`,
		`GRANT readers TO app_aaaa`,
		`CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD 'repl'`,
		`CREATE ROLE shared WITH LOGIN PASSWORD 'source-password'`,
		`CREATE DATABASE controller`)
	sqlExec(t, src, "controller", `CREATE TABLE apps (name text)`, `INSERT INTO apps VALUES ('web')`)
	blobstore(t, src, map[string]string{"slugs/a.tgz": "slug of a", "slugs/b.tgz": "slug of b", "shared/x": "source x"})
	return src
}

// target is a fresh cluster's server: its own controller database (owned
// by its controller's role), blobstore, role "shared" and a database of
// its own.
func target(t testing.TB) *pgtest.Server {
	dst := pgtest.New(t)
	sqlExec(t, dst, "postgres",
		`CREATE ROLE ctl WITH LOGIN PASSWORD 'ctl'`,
		`CREATE DATABASE controller OWNER ctl`,
		`CREATE ROLE shared WITH LOGIN PASSWORD 'target-password'`,
		`CREATE ROLE snoop WITH LOGIN PASSWORD 'snoop'`,
		`CREATE DATABASE other`)
	sqlExec(t, dst, "other", `CREATE TABLE items (id int)`, `INSERT INTO items VALUES (1), (2), (3)`)
	blobstore(t, dst, map[string]string{"shared/x": "target x", "slugs/own.tgz": "own slug"})
	return dst
}

// backupOf fetches a backup of srv through the handler.
func backupOf(t testing.TB, srv *pgtest.Server) []byte {
	t.Helper()
	hs := httptest.NewServer(Handler(testConfig(srv)))
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/backup")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Trailer.Get(ErrorTrailer) != "" {
		t.Fatalf("backup: %s, trailer %q", resp.Status, resp.Trailer.Get(ErrorTrailer))
	}
	return data
}

// restoreOnto posts an archive to srv's handler and returns the result or
// the error (an *httpjson.Error with the status's code when refused).
func restoreOnto(t testing.TB, srv *pgtest.Server, data []byte) (*Result, []string, error) {
	t.Helper()
	hs := httptest.NewServer(Handler(testConfig(srv)))
	defer hs.Close()
	resp, err := http.Post(hs.URL+"/restore", "application/x-tar", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, httpjson.ReadError(resp)
	}
	var progress []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("restore answered %q: %v", sc.Text(), err)
		}
		switch {
		case ev.Progress != "":
			progress = append(progress, ev.Progress)
		case ev.Error != nil:
			return nil, progress, ev.Error
		case ev.Result != nil:
			return ev.Result, progress, nil
		}
	}
	t.Fatalf("restore ended without a result: %v", sc.Err())
	return nil, nil, nil
}

func TestBackupAndRestore(t *testing.T) {
	src, dst := source(t), target(t)
	data := backupOf(t, src)

	// The archive is what it says.
	_, m, err := archive.Read(bytes.NewReader(data), archive.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var dbs []string
	for _, db := range m.Databases {
		dbs = append(dbs, db.Name+":"+db.Kind+":"+db.Owner)
	}
	if want := []string{"controller:controller:postgres", "blobstore:blobstore:postgres", "app_aaaa:app:app_aaaa", "app_bbbb:app:app_bbbb"}; !slices.Equal(dbs, want) {
		t.Fatalf("databases %v, want %v", dbs, want)
	}

	requirePasswords(t, dst)
	before := state(t, dst)

	// Bad archives are refused before anything changes.
	random := bytes.Repeat([]byte{0x5a, 0x17, 0xc3, 0x00}, 1024)
	for _, bad := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"truncated", data[:len(data)/2], "incomplete backup"},
		{"random bytes", random, "not a Flynn backup"},
		{"foreign tar", fakeTar(t), `first entry is "hello.txt"`},
		{"empty", nil, "empty"},
	} {
		_, _, err := restoreOnto(t, dst, bad.data)
		if !httpjson.IsCode(err, httpjson.CodeValidation) || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%s archive: got %v, want a validation error mentioning %q", bad.name, err, bad.msg)
		}
	}
	if after := state(t, dst); after != before {
		t.Fatalf("a refused restore changed the server:\n%s\n%s", before, after)
	}

	res, progress, err := restoreOnto(t, dst, data)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Databases, []string{"app_aaaa", "app_bbbb"}) || !slices.Equal(res.Roles, []string{"app_aaaa", "app_bbbb", "readers"}) ||
		res.ControllerDatabase != ControllerScratch || res.BlobsAdded != 2 || res.BlobsKept != 1 {
		t.Fatalf("result %+v", res)
	}
	if len(progress) == 0 || progress[0] != "restoring roles" {
		t.Fatalf("progress %q", progress)
	}

	// The apps' roles log in with their old passwords and see their data.
	for _, tt := range []struct {
		user, password, db string
		rows               int
	}{{"app_aaaa", "secret-a", "app_aaaa", 2}, {"app_bbbb", "secret-b", "app_bbbb", 1}} {
		if n, err := login(dst, tt.user, tt.password, tt.db); err != nil || n != tt.rows {
			t.Errorf("%s on %s: %d rows, %v; want %d", tt.user, tt.db, n, err, tt.rows)
		}
		if _, err := login(dst, tt.user, "wrong", tt.db); err == nil {
			t.Errorf("%s logged in with a wrong password", tt.user)
		}
	}
	// One app cannot reach another's database, nor can any other role.
	for _, tt := range []struct{ user, password, db string }{{"app_aaaa", "secret-a", "app_bbbb"}, {"snoop", "snoop", "app_aaaa"}} {
		if _, err := login(dst, tt.user, tt.password, tt.db); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s on %s: %v, want permission denied", tt.user, tt.db, err)
		}
	}
	// The target's own role kept its password; the replication role was
	// not brought over; the membership was.
	if _, err := login(dst, "shared", "source-password", "other"); err == nil {
		t.Error("shared took the backup's password")
	}
	if got := queryString(t, dst, "postgres", `SELECT (SELECT count(*) FROM pg_roles WHERE rolname = 'replicator')::text || ' ' ||
		pg_has_role('app_aaaa', 'readers', 'MEMBER')::text`); got != "0 true" {
		t.Errorf("replicator count and membership: %s", got)
	}
	// The controller's database waits in the scratch database, owned by
	// the owner of the target's controller database.
	if got := queryString(t, dst, ControllerScratch, `SELECT pg_get_userbyid(d.datdba) || ' ' || t.tableowner || ' ' || (SELECT name FROM apps)
		FROM pg_database d, pg_tables t WHERE d.datname = current_database() AND t.tablename = 'apps'`); got != "ctl ctl web" {
		t.Errorf("controller scratch: %q", got)
	}
	// Blobs were added; the target's own stay as they were.
	for p, want := range map[string]string{"slugs/a.tgz": "slug of a", "slugs/b.tgz": "slug of b", "shared/x": "target x", "slugs/own.tgz": "own slug"} {
		if got := readBlob(t, dst, p); got != want {
			t.Errorf("blob %s: %q, want %q", p, got, want)
		}
	}
	if got := queryString(t, dst, "postgres", `SELECT count(*)::text FROM pg_database WHERE datname = $1`, BlobstoreScratch); got != "0" {
		t.Error("the blobstore's scratch database was left")
	}
	if got := queryString(t, dst, "other", `SELECT count(*)::text FROM items`); got != "3" {
		t.Errorf("other database: %s rows", got)
	}

	// A second restore finds the apps' databases in the way.
	before = state(t, dst)
	_, _, err = restoreOnto(t, dst, data)
	if !httpjson.IsCode(err, httpjson.CodeConflict) || !strings.Contains(err.Error(), "app_aaaa (it exists here, with 2 tables)") {
		t.Fatalf("second restore: %v", err)
	}
	if after := state(t, dst); after != before {
		t.Fatalf("a refused restore changed the server:\n%s\n%s", before, after)
	}
}

// rebuild writes an archive with the entries of good, then extra, and the
// databases edit returns.
func rebuild(t testing.TB, good []byte, extra map[string]string, edit func([]archive.Database) []archive.Database) []byte {
	t.Helper()
	dumps := archive.NewDir(t.TempDir())
	_, m, err := archive.Read(bytes.NewReader(good), dumps)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := archive.NewWriter(&buf, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Entries {
		p, _ := dumps.Path(e.Name)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		err = w.Add(e.Name, e.Size, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range extra {
		if err := w.Add(name, int64(len(content)), strings.NewReader(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(edit(m.Databases)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFailedRestoreIsUndone restores an archive whose second database
// cannot be restored: the first, and the roles, are dropped again.
func TestFailedRestoreIsUndone(t *testing.T) {
	src := pgtest.New(t)
	appDatabase(t, src, "app_good", "good", "row")
	data := rebuild(t, backupOf(t, src), map[string]string{"databases/app_bad.dump": "PGDMP but not really"}, func(dbs []archive.Database) []archive.Database {
		return append(dbs, archive.Database{Name: "app_bad", Kind: archive.KindApp, Owner: "app_good", Entry: "databases/app_bad.dump"})
	})
	dst := pgtest.New(t)
	before := state(t, dst)
	_, progress, err := restoreOnto(t, dst, data)
	if err == nil || !strings.Contains(err.Error(), "pg_restore app_bad") || !strings.Contains(err.Error(), "dropped again") {
		t.Fatalf("got %v, want pg_restore's failure", err)
	}
	if !slices.Contains(progress, "restoring database app_good") {
		t.Fatalf("progress %q: app_good was not restored first", progress)
	}
	if after := state(t, dst); after != before {
		t.Fatalf("a failed restore left changes:\n%s\n%s", before, after)
	}

	// A database whose owner the backup lacks (dropped while it ran) is
	// left out, and said so.
	data = rebuild(t, backupOf(t, src), nil, func(dbs []archive.Database) []archive.Database {
		dbs[0].Owner = "ghost"
		return dbs
	})
	res, _, err := restoreOnto(t, dst, data)
	if err != nil || len(res.Databases) != 0 || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0], "ghost") {
		t.Fatalf("restore with a missing owner: %+v, %v", res, err)
	}
}

// TestOneRestoreAtATime holds a restore open and tries another.
func TestOneRestoreAtATime(t *testing.T) {
	srv := pgtest.New(t)
	data := backupOf(t, srv)
	ctx := context.Background()
	p, err := Prepare(ctx, testConfig(srv), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Prepare(ctx, testConfig(srv), bytes.NewReader(data))
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second restore: %v, want ErrBusy", err)
	}
	p.Close()
	p, err = Prepare(ctx, testConfig(srv), bytes.NewReader(data))
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	p.Close()
}

func TestNoPasswordOnCommandLines(t *testing.T) {
	s, err := connect(context.Background(), Config{URL: "postgres://postgres:s3cret@db.example:5433/x?sslmode=disable&password=other", BinDir: "/bin"})
	if err != nil {
		t.Fatal(err)
	}
	cmd := s.command(context.Background(), s.pgDump, "--dbname="+s.dbURL("app"))
	if line := strings.Join(cmd.Args, " "); strings.Contains(line, "s3cret") || strings.Contains(line, "other") {
		t.Fatalf("password on the command line: %s", line)
	}
	if want := "postgres://postgres@db.example:5433/app?sslmode=disable"; s.dbURL("app") != want {
		t.Fatalf("url %s, want %s", s.dbURL("app"), want)
	}
	if !slices.Contains(cmd.Env, "PGPASSWORD=other") {
		t.Fatal("no PGPASSWORD in the environment")
	}
}

func fakeTar(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "hello.txt", Size: 5, Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	io.WriteString(tw, "hello")
	tw.Close()
	return buf.Bytes()
}
