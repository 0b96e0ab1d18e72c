// Package backup dumps every database of the Postgres appliance into one
// archive (package archive) and restores such an archive onto another
// cluster's appliance: the heart of `flynn cluster backup` and `flynn
// cluster restore`. flynn-postgres-api serves it (Handler) behind its
// provider key; the controller calls it there.
//
//	Dump:    databases/<db>.dump ◄─ pg_dump --format=custom, one database at a time
//	         roles.sql ◄─ pg_authid (app roles, with their password hashes)
//	         manifest.json (last)
//
//	Restore: read the whole archive into a temporary directory and verify it,
//	         check nothing is in the way ─────────────────► refuse, having changed nothing
//	         roles.sql: create the roles this server lacks (existing ones keep their passwords)
//	         app databases: pg_restore --create (owner, privileges and data as they were)
//	         the controller's: into the scratch database controller_restore, which the
//	           controller imports from and drops (controller/postgres.Import)
//	         the blobstore's: into a scratch database, its blobs added to the live
//	           blobstore database where their path is free, the scratch dropped
//	         any failure: the databases and roles made so far are dropped again
//
// The superuser and the replication role are never in a backup, so the
// new cluster keeps its own; app roles keep their password hashes, so the
// apps' DATABASE_URLs work against the new cluster as they did. pg_dump and
// pg_restore run as child processes; the password reaches them in their
// environment (PGPASSWORD), never on their command line.
package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config says which server to back up or restore onto and how.
type Config struct {
	// URL is a superuser's connection URL of the server
	// (postgres://postgres:PW@leader.postgres.discoverd:5432/postgres);
	// its database is ignored. Required.
	URL string
	// Resolve, when set, turns the URL's host:port into the address that
	// every connection of one backup or restore goes to (so that all of
	// them reach the same server, and because pg_dump and pg_restore
	// resolve names only through DNS): flynn-postgres-api asks discoverd
	// for the primary. Nil connects to the URL's host as it is.
	Resolve func(ctx context.Context, hostport string) (string, error)
	// BinDir holds pg_dump and pg_restore; default: found on PATH, else
	// the newest /usr/lib/postgresql/*/bin.
	BinDir string
	// TempDir holds a backup's dumps while they are written, and a
	// restore's whole archive; default os.TempDir(). It needs room for the
	// largest database dump, and for a restore the whole archive.
	TempDir string
	// ControllerDatabase and BlobstoreDatabase name the platform's own
	// databases, which a restore treats apart (see the package doc);
	// default "controller" and "blobstore".
	ControllerDatabase string
	BlobstoreDatabase  string
	// Exclude names databases left out of a backup, besides the
	// templates and "postgres", which always are.
	Exclude []string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock of the archive's creation time; default time.Now.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultControllerDatabase = "controller"
	DefaultBlobstoreDatabase  = "blobstore"
)

// Scratch databases of a restore. ControllerScratch is left for the
// controller, which imports from it and drops it; a restore drops either
// when it finds it left over from an earlier one.
const (
	ControllerScratch = "controller_restore"
	BlobstoreScratch  = "blobstore_restore"
)

func (c Config) withDefaults() Config {
	if c.ControllerDatabase == "" {
		c.ControllerDatabase = DefaultControllerDatabase
	}
	if c.BlobstoreDatabase == "" {
		c.BlobstoreDatabase = DefaultBlobstoreDatabase
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
	return c
}

// server is one resolved connection target for the length of a backup or
// a restore, with the paths of the tools.
type server struct {
	u        *url.URL // without password
	password string
	pgDump   string
	pgRest   string
}

// connect resolves cfg's URL and finds the tools.
func connect(ctx context.Context, cfg Config) (*server, error) {
	if cfg.URL == "" {
		return nil, errors.New("backup: no database URL")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, errors.New("backup: the database URL must be postgres://user:password@host[:port]/db")
	}
	s := &server{u: u}
	if u.User != nil {
		s.password, _ = u.User.Password()
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if pw := q.Get("password"); pw != "" {
		s.password = pw
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	if cfg.Resolve != nil {
		hostport := u.Host
		if u.Port() == "" {
			hostport = net.JoinHostPort(u.Hostname(), "5432")
		}
		addr, err := cfg.Resolve(ctx, hostport)
		if err != nil {
			return nil, fmt.Errorf("backup: find the database server: %w", err)
		}
		u.Host = addr
	}
	bin := cfg.BinDir
	if bin == "" {
		if bin, err = binDir(); err != nil {
			return nil, err
		}
	}
	s.pgDump, s.pgRest = filepath.Join(bin, "pg_dump"), filepath.Join(bin, "pg_restore")
	return s, nil
}

// binDir finds the directory of pg_dump.
func binDir() (string, error) {
	if p, err := exec.LookPath("pg_dump"); err == nil {
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
	if len(matches) == 0 {
		return "", errors.New("backup: no pg_dump on PATH or under /usr/lib/postgresql")
	}
	sort.Strings(matches)
	return filepath.Dir(matches[len(matches)-1]), nil
}

// dbURL is the URL of database db without the password, for the tools'
// command lines.
func (s *server) dbURL(db string) string {
	u := *s.u
	u.Path = "/" + db
	u.RawPath = ""
	return u.String()
}

// conn opens a connection to database db.
func (s *server) conn(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.dbURL(db))
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	cfg.Password = s.password
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database %s: %w", db, err)
	}
	return c, nil
}

// command returns a pg_dump or pg_restore command that gets the password
// from its environment.
func (s *server) command(ctx context.Context, tool string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, tool, args...)
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PGPASSWORD=") })
	if s.password != "" {
		env = append(env, "PGPASSWORD="+s.password)
	}
	// A tool that cannot connect says so rather than prompting.
	cmd.Env = append(env, "PGCONNECT_TIMEOUT=15")
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// run runs cmd, returning its stderr's end in the error when it fails.
func run(cmd *exec.Cmd, what string) error {
	var stderr tailBuffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return fmt.Errorf("%s: %w", what, err)
		}
		return fmt.Errorf("%s: %w: %s", what, err, msg)
	}
	return nil
}

// tailBuffer keeps the last 4 KiB written to it: a tool's last words.
type tailBuffer struct{ b []byte }

const tailSize = 4 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > tailSize {
		t.b = append(t.b[:0], t.b[len(t.b)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// ident quotes an SQL identifier.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// literal quotes an SQL string literal (standard_conforming_strings on,
// which roles.sql sets).
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// isSuperuser refuses a connection whose role cannot do a backup's or a
// restore's work.
func isSuperuser(ctx context.Context, c *pgx.Conn) error {
	var super bool
	var user string
	if err := c.QueryRow(ctx, `SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&user, &super); err != nil {
		return fmt.Errorf("check the database role: %w", err)
	}
	if !super {
		return fmt.Errorf("backup: the database role %s is no superuser", user)
	}
	return nil
}
