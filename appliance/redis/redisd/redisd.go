// Package redisd is the flynn-redis binary, the entrypoint of a Redis
// server job of the Redis appliance (see package redis): it writes the
// server's redis.conf from its Config and runs redis-server under it as a
// child, until the job is stopped.
//
// The password comes from the environment ($REDIS_PASSWORD) and goes to
// redis-server in a file only the job's user can read, never on a command
// line, where `ps` on the node would show it. SIGTERM (the job being
// stopped) is passed on: Redis then writes its data out and exits, and
// flynn-redis exits as it did.
package redisd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/openflynn/flynn/appliance/redis"
)

// Config is what a Redis server job runs with.
type Config struct {
	// Port is the port Redis listens on, on every address of the job's
	// network namespace (in a job, $PORT).
	Port int
	// Password is the password every client must give; required.
	Password string
	// DataDir holds Redis's snapshot and append-only file; default
	// redis.DataDir, the job's volume. It is created (0700) when missing.
	DataDir string
	// ConfDir is where a directory of its own for redis.conf is made
	// (removed when Redis exits); default os.TempDir(). Not the data
	// directory: the file holds the password as it is at this start, and
	// the volume outlives the job.
	ConfDir string
	// RedisServer is the redis-server program; default "redis-server",
	// found on PATH.
	RedisServer string
	// Env is redis-server's environment; nil gives it an empty one.
	// flynn-redis passes its own without the password.
	Env []string
	// Stdout and Stderr receive redis-server's output (its log); default
	// the process's own.
	Stdout, Stderr io.Writer
}

func (cfg Config) withDefaults() Config {
	if cfg.DataDir == "" {
		cfg.DataDir = redis.DataDir
	}
	if cfg.ConfDir == "" {
		cfg.ConfDir = os.TempDir()
	}
	if cfg.RedisServer == "" {
		cfg.RedisServer = "redis-server"
	}
	if cfg.Env == nil {
		cfg.Env = []string{}
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	return cfg
}

func (cfg Config) check() error {
	if cfg.Port <= 0 || cfg.Port > 65535 {
		return fmt.Errorf("port %d is not a TCP port", cfg.Port)
	}
	if cfg.Password == "" {
		// Redis would admit every client that reaches its route.
		return errors.New("no password: Redis would admit everyone")
	}
	return nil
}

// ExitError is redis-server's failure. flynn-redis exits with Code, as
// pkg/cmdline does for an error with an ExitCode method.
type ExitError struct {
	// Code is redis-server's exit status, or 128 plus the signal that
	// killed it, as a shell reports it.
	Code int
	// State says how it ended ("exit status 1", "signal: killed").
	State string
}

func (e *ExitError) Error() string { return "redis-server: " + e.State }

// ExitCode is the status flynn-redis exits with.
func (e *ExitError) ExitCode() int { return e.Code }

// Run writes redis.conf and runs redis-server until it exits or ctx ends;
// when ctx ends it sends redis-server SIGTERM and waits for it, however
// long its final save takes (the job's host bounds that with its own stop
// timeout). It returns nil when redis-server exits with status 0, an
// *ExitError when it fails.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	dir, err := os.MkdirTemp(cfg.ConfDir, "flynn-redis-")
	if err != nil {
		return fmt.Errorf("config directory: %w", err)
	}
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(conf, []byte(Conf(cfg)), 0o600); err != nil {
		return fmt.Errorf("write redis.conf: %w", err)
	}

	cmd := exec.Command(cfg.RedisServer, conf)
	cmd.Dir = cfg.DataDir
	cmd.Env = cfg.Env
	cmd.Stdout, cmd.Stderr = cfg.Stdout, cfg.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	logger.Info("redis-server started", "pid", cmd.Process.Pid, "port", cfg.Port, "dir", cfg.DataDir)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	select {
	case err = <-exited:
		logger.Warn("redis-server exited on its own", "state", cmd.ProcessState.String())
	case <-ctx.Done():
		logger.Info("stopping redis-server; it saves its data first")
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			logger.Error("signal redis-server", "err", err)
		}
		err = <-exited
		logger.Info("redis-server stopped", "state", cmd.ProcessState.String())
	}
	return exitError(cmd.ProcessState, err)
}

// exitError is how a finished redis-server ended, as Run returns it.
func exitError(state *os.ProcessState, waitErr error) error {
	if state == nil {
		return fmt.Errorf("redis-server: %w", waitErr)
	}
	if state.Success() {
		return nil
	}
	code := state.ExitCode()
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	return &ExitError{Code: code, State: state.String()}
}
