// Package cmdlinetest runs a daemon's command line in a test: in an
// environment set for the test, and with the daemon's Run replaced, so that
// the test gets the Config the daemon would run with, or its refusal,
// instead of a running daemon.
//
// A test describes the command line once, with what every case shares, and
// asks of each case that it be accepted or refused:
//
//	cmd := cmdlinetest.Command[Config]{Daemon: Daemon, Env: map[string]string{"PORT": ""}}
//	cmd.Refused(t, nil, "--max-size must be more than 0", "--max-size", "0")
//	cfg := cmd.Accepted(t, map[string]string{"FLYNN_MAX_SIZE": "1GiB"})
package cmdlinetest

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/openflynn/flynn/pkg/cmdline"
)

// Command is a daemon's command line under test, with what each of its
// runs shares. Its runs set the environment with t.Setenv, so they cannot
// be in parallel tests; t's end restores it.
type Command[C any] struct {
	// Daemon returns the daemon. It is called for every run, because
	// parsing leaves values in the flags; a constructor that takes
	// arguments fits in a closure.
	Daemon func() cmdline.Daemon[C]
	// Args come before each run's own arguments: flags every run needs.
	Args []string
	// Env is set for every run; a run's own env wins over it.
	Env map[string]string
	// Unset are variables removed for every run (before Env and the run's
	// env are set), so that the machine's environment does not reach the
	// daemon. Setting a variable empty is not the same: it still sets its
	// flag, to "".
	Unset []string
}

// Result is what one run of a command line did.
type Result[C any] struct {
	// Config is the Config Run got: the zero C unless Ran.
	Config C
	// Ran says whether Run was called.
	Ran bool
	// Code is the exit status: 0 when Run was called, 2 for a usage error.
	Code int
	// Output is what the command wrote: its errors and its log.
	Output string
}

// Parse runs the command line, with args after c.Args, in c's environment
// changed by env, and returns what it did. Run only records the Config it
// is given.
func (c Command[C]) Parse(t testing.TB, env map[string]string, args ...string) Result[C] {
	t.Helper()
	for _, k := range c.Unset {
		t.Setenv(k, "") // for t's end to restore it
		if err := os.Unsetenv(k); err != nil {
			t.Fatalf("unset %s: %v", k, err)
		}
	}
	for k, v := range c.Env {
		t.Setenv(k, v)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	d := c.Daemon()
	var r Result[C]
	d.Run = func(_ context.Context, cfg C, _ *slog.Logger) error {
		r.Config, r.Ran = cfg, true
		return nil
	}
	var out bytes.Buffer
	r.Code = cmdline.Execute(t.Context(), d.App(), slices.Concat([]string{d.Name}, c.Args, args), &out)
	r.Output = out.String()
	return r
}

// Accepted runs the command line as Parse does and returns the Config Run
// got, failing t unless Run was called and the command exited 0.
func (c Command[C]) Accepted(t testing.TB, env map[string]string, args ...string) C {
	t.Helper()
	r := c.Parse(t, env, args...)
	if r.Code != 0 || !r.Ran {
		t.Fatalf("exit %d, ran %v: %s; want it to run and exit 0", r.Code, r.Ran, r.Output)
	}
	return r.Config
}

// Refused runs the command line as Parse does, failing t unless the
// command exits 2 (a usage error), without running, and its output
// contains msg.
func (c Command[C]) Refused(t testing.TB, env map[string]string, msg string, args ...string) {
	t.Helper()
	r := c.Parse(t, env, args...)
	if r.Code != 2 || r.Ran || !strings.Contains(r.Output, msg) {
		t.Fatalf("exit %d, ran %v, output %q; want exit 2 saying %q", r.Code, r.Ran, r.Output, msg)
	}
}
