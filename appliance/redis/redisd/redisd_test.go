package redisd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/openflynn/flynn/pkg/cmdline/cmdlinetest"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/syncbuf"
	"github.com/openflynn/flynn/pkg/testdeps"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestQuote(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"hex", "0af3", `"0af3"`},
		{"empty", "", `""`},
		{"space", "a b", `"a b"`},
		{"quote and backslash", `a"b\c`, `"a\"b\\c"`},
		{"newline would end the directive", "a\nrequirepass x", `"a\x0arequirepass x"`},
		{"not ASCII", "é", `"\xc3\xa9"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quote(tt.in); got != tt.want {
				t.Errorf("quote(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestConf(t *testing.T) {
	conf := Conf(Config{Port: 6380, Password: "s3cret", DataDir: "/data"})
	for _, want := range []string{
		"bind 0.0.0.0",
		"port 6380",
		"protected-mode no",
		`requirepass "s3cret"`,
		`dir "/data"`,
		"appendonly yes",
		"enable-protected-configs no",
		"enable-debug-command no",
		"enable-module-command no",
	} {
		if !slices.Contains(strings.Split(conf, "\n"), want) {
			t.Errorf("redis.conf lacks the line %q:\n%s", want, conf)
		}
	}
}

func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "REDIS_PASSWORD=s3cret", "REDIS_PASSWORDX=kept", "PORT=1"})
	want := []string{"PATH=/bin", "REDIS_PASSWORDX=kept", "PORT=1"}
	if !slices.Equal(got, want) {
		t.Errorf("childEnv = %q, want %q", got, want)
	}
}

func TestCommandLine(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		want  Config
		fails string
	}{
		{
			name: "a job's environment",
			env:  map[string]string{"PORT": "15001", "REDIS_PASSWORD": "pw"},
			want: Config{Port: 15001, Password: "pw", DataDir: "/data", RedisServer: "redis-server"},
		},
		{
			name: "flags win over $PORT",
			env:  map[string]string{"PORT": "15001", "REDIS_PASSWORD": "pw"},
			args: []string{"--port", "7000", "--data-dir", "/d", "--redis-server", "/usr/bin/redis-server"},
			want: Config{Port: 7000, Password: "pw", DataDir: "/d", RedisServer: "/usr/bin/redis-server"},
		},
		{
			name: "a password file",
			env:  map[string]string{"PORT": "15001", "REDIS_PASSWORD": ""},
			args: []string{"--password-file", pwFile},
			want: Config{Port: 15001, Password: "from-file", DataDir: "/data", RedisServer: "redis-server"},
		},
		{name: "no password", env: map[string]string{"PORT": "15001", "REDIS_PASSWORD": ""}, fails: "no password"},
		{name: "a port that is none", env: map[string]string{"PORT": "http", "REDIS_PASSWORD": "pw"}, fails: "not a port"},
		{name: "a port out of range", env: map[string]string{"PORT": "70000", "REDIS_PASSWORD": "pw"}, fails: "not a TCP port"},
	}
	cmd := cmdlinetest.Command[Config]{Daemon: Daemon}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fails != "" {
				cmd.Refused(t, tt.env, tt.fails, tt.args...)
				return
			}
			got := cmd.Accepted(t, tt.env, tt.args...)
			for _, kv := range got.Env {
				if strings.HasPrefix(kv, "REDIS_PASSWORD=") {
					t.Errorf("redis-server's env has %s", kv)
				}
			}
			got.Env = nil
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("config %+v, want %+v", got, tt.want)
			}
		})
	}
}

// server is one Run of the wrapper in the background.
type server struct {
	cancel context.CancelFunc
	done   chan error
	out    *syncbuf.Buffer
}

// start runs Run with cfg until stop (or the test's end).
func start(t *testing.T, cfg Config) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{cancel: cancel, done: make(chan error, 1), out: &syncbuf.Buffer{}}
	cfg.Stdout, cfg.Stderr = s.out, s.out
	logger := slog.New(slog.NewTextHandler(s.out, nil))
	go func() { s.done <- Run(ctx, cfg, logger) }()
	t.Cleanup(func() {
		cancel()
		<-s.done
		if t.Failed() {
			t.Logf("output:\n%s", s.out.String())
		}
	})
	return s
}

// stop cancels Run (SIGTERM to the child) and returns what it returned.
func (s *server) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("Run did not return 30s after its context ended")
		return nil
	}
}

// script writes an executable shell script that stands in for
// redis-server.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "redis-server")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int // 0: Run returns nil
	}{
		{"a clean exit", "exit 0", 0},
		{"a failure", "exit 3", 3},
		{"killed", "kill -KILL $$", 128 + 9},
		// The file it is given is the configuration, readable by the
		// job's user alone, without the password in the environment.
		{"the configuration's mode and the environment", `test "$(stat -c %a "$1")" = 600 && grep -q '^requirepass "pw"$' "$1" && test -z "$REDIS_PASSWORD" || exit 9`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Port: 15799, Password: "pw", DataDir: t.TempDir(), ConfDir: t.TempDir(), RedisServer: script(t, tt.body)}
			t.Setenv("REDIS_PASSWORD", "pw")
			s := start(t, cfg)
			var err error
			select {
			case err = <-s.done:
				s.done <- err
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return")
			}
			var ee *ExitError
			switch {
			case tt.want == 0 && err != nil:
				t.Fatalf("Run = %v, want nil", err)
			case tt.want != 0 && (!errors.As(err, &ee) || ee.ExitCode() != tt.want):
				t.Fatalf("Run = %v, want an exit status %d", err, tt.want)
			}
			if left, _ := filepath.Glob(filepath.Join(cfg.ConfDir, "*")); len(left) > 0 {
				t.Errorf("left behind: %q", left)
			}
		})
	}
}

// TestStopForwardsSIGTERM checks that ending Run's context signals the
// child with SIGTERM and that Run returns how the child then exited.
func TestStopForwardsSIGTERM(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	body := fmt.Sprintf("trap 'exit 7' TERM\ntouch %s\nwhile :; do sleep 0.05; done", ready)
	s := start(t, Config{Port: 15799, Password: "pw", DataDir: dir, ConfDir: t.TempDir(), RedisServer: script(t, body)})
	poll.Until(t, 10*time.Second, "the child traps SIGTERM", func() bool {
		_, err := os.Stat(ready)
		return err == nil
	})
	var ee *ExitError
	if err := s.stop(t); !errors.As(err, &ee) || ee.Code != 7 {
		t.Fatalf("Run = %v, want the child's exit status 7", err)
	}
}

func TestRunRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no password", Config{Port: 15799}, "no password"},
		{"no port", Config{Password: "pw"}, "not a TCP port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.DataDir = t.TempDir()
			if err := Run(t.Context(), tt.cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// freePort returns a port of this package's range (15700-15799) that
// nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	for p := 15700; p < 15799; p++ {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatal("no free port in 15700-15798")
	return 0
}

// TestRedisServer runs the real redis-server: it admits only clients that
// give the password, and what was written before a stop (SIGTERM) is there
// after a new start on the same data directory.
func TestRedisServer(t *testing.T) {
	testdeps.Short(t)
	bin := testdeps.LookPath(t, "redis-server")
	// A password that needs quoting in redis.conf.
	const password = `pa ss"w\ord`
	cfg := Config{Port: freePort(t), Password: password, DataDir: t.TempDir(), ConfDir: t.TempDir(), RedisServer: bin}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port))

	s := start(t, cfg)
	var c *respConn
	poll.UntilNil(t, 20*time.Second, "redis-server answers", func() (err error) {
		if c, err = dialRedis(addr); err != nil {
			return err
		}
		if _, err = c.do("PING"); err != nil && !strings.HasPrefix(err.Error(), "NOAUTH") {
			c.Close()
			return err
		}
		return nil
	})
	defer c.Close()

	if _, err := c.do("SET", "k", "v"); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Fatalf("SET without AUTH = %v, want a NOAUTH error", err)
	}
	if _, err := c.do("AUTH", "guess"); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
		t.Fatalf("AUTH with a wrong password = %v, want WRONGPASS", err)
	}
	if got, err := c.do("AUTH", password); err != nil || got != "OK" {
		t.Fatalf("AUTH = %q, %v; want OK", got, err)
	}
	if got, err := c.do("SET", "k", "v"); err != nil || got != "OK" {
		t.Fatalf("SET = %q, %v; want OK", got, err)
	}
	// The paths stay as configured: a client may not point Redis's files
	// elsewhere in the job.
	if _, err := c.do("CONFIG", "SET", "dir", "/tmp"); err == nil {
		t.Errorf("CONFIG SET dir succeeded; want it refused")
	}
	c.Close()

	if err := s.stop(t); err != nil {
		t.Fatalf("stop: Run = %v, want nil (redis-server exits 0 on SIGTERM)", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "appendonlydir")); err != nil {
		t.Errorf("no append-only file in the data directory: %v", err)
	}

	start(t, cfg)
	poll.UntilNil(t, 20*time.Second, "the value written before the restart", func() error {
		c, err := dialRedis(addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.do("AUTH", password); err != nil {
			return err
		}
		got, err := c.do("GET", "k")
		if err != nil {
			return err
		}
		if got != "v" {
			t.Fatalf("GET k after a restart = %q, want %q", got, "v")
		}
		return nil
	})
}
