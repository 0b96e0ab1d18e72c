// Package pgtest runs a throwaway PostgreSQL server for integration tests:
// initdb into a temporary directory, postgres on a free loopback port, and a
// fresh database per test. It finds the server binaries on PATH, through
// pg_config, or in Debian's /usr/lib/postgresql/*/bin, and drops to the
// postgres user when run as root (postgres refuses to run as root).
//
// A package's tests share one server, started by the first test that asks
// for it, and each takes a database of its own:
//
//	var pg pgtest.Shared
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pg.Main(m)) }
//
//	func TestX(t *testing.T) {
//		url := pg.Server(t).NewDatabase(t)
//		…
//	}
//
// The Shared value lives in the test package, not here: pgtest keeps no
// package-level state, so each test binary owns its server and stops it
// from its own TestMain. New starts a server for one test alone, for a test
// that stops or breaks it.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/pkg/random"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// Server is a running throwaway PostgreSQL server.
type Server struct {
	dir  string
	port int
	cmd  *exec.Cmd
	// exited is closed when postgres has exited, with its error in
	// exitErr.
	exited  chan struct{}
	exitErr error
}

// BinDir returns the directory that holds initdb and postgres.
func BinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(resolved), nil
		}
		return filepath.Dir(p), nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", errors.New("no initdb on PATH, from pg_config or under /usr/lib/postgresql")
	}
	sort.Strings(matches)
	return filepath.Dir(matches[len(matches)-1]), nil
}

// Start initialises a cluster in a new temporary directory and starts
// postgres on a free 127.0.0.1 port. Stop removes it all.
func Start(ctx context.Context) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "flynn-pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, exited: make(chan struct{})}
	cred, err := credential()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		if err := os.Chmod(dir, 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	if s.port, err = freePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-k", dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=64MB")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	logFile, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	go func() {
		s.exitErr = s.cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls for a connection, but is no poll.Wait: it also waits
// for postgres to exit, which ends the wait at once.
func (s *Server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
			return fmt.Errorf("postgres exited: %v: %s", s.exitErr, log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after 30s: %w", err)
		}
	}
}

// URL returns a connection string for database db.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Port returns the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// CreateDatabase makes a new empty database and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	name := "t_" + random.Hex(8)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	return s.URL(name), nil
}

// Stop shuts the server down and removes its files.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
	}
	os.RemoveAll(s.dir)
}

// New starts a server for one test and stops it when the test ends. A
// missing PostgreSQL installation skips the test locally and fails it in CI.
// Tests that only need a database use Shared, which starts one server for
// all of them.
func New(t testing.TB) *Server {
	t.Helper()
	require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx)
	if err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// require stops a test that cannot have a server: under -short (outside
// CI), or when PostgreSQL is not installed (a skip locally, a failure in
// CI).
func require(t testing.TB) {
	t.Helper()
	testdeps.Short(t)
	if _, err := BinDir(); err != nil {
		testdeps.Missing(t, "postgresql server", err)
	}
}

// Shared is one server for every test of a test binary, started when the
// first test asks for it. The zero value is ready to use; declare it as a
// package-level variable of the test package and stop it in TestMain,
// through Main or Stop.
type Shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Server returns the shared server, starting it on the first call. It
// stops the test as New does when there can be no server, and fails it
// when the server did not start.
func (s *Shared) Server(t testing.TB) *Server {
	t.Helper()
	require(t)
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.srv, s.err = Start(ctx)
	})
	if s.err != nil {
		t.Fatalf("start postgres: %v", s.err)
	}
	return s.srv
}

// Stop stops the server if a test started it. Call it after the tests,
// from TestMain.
func (s *Shared) Stop() {
	if s.srv != nil {
		s.srv.Stop()
	}
}

// Main wraps m so that running it runs the tests and then stops the
// server, for TestMain:
//
//	goleak.VerifyTestMain(pg.Main(m))
//
// goleak looks for leaks after Run returns, so the server's goroutines are
// gone by then.
func (s *Shared) Main(m *testing.M) interface{ Run() int } {
	return mainFunc(func() int {
		defer s.Stop()
		return m.Run()
	})
}

type mainFunc func() int

func (f mainFunc) Run() int { return f() }

// NewDatabase returns the URL of a fresh database on s for one test.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url, err := s.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// credential returns the postgres user's ids when running as root, since
// postgres will not run as root; nil otherwise.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		u, err = user.Lookup("nobody")
		if err != nil {
			return nil, fmt.Errorf("running as root and no postgres or nobody user: %w", err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
