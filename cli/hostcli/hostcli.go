// Package hostcli is flynn-host's operator command line: the commands an
// operator runs on one host to look at and drive its jobs through the host
// API (--host, default http://127.0.0.1:1113, with the cluster key --key):
//
//   - ps lists the host's jobs (-a: finished ones too) as a table of id,
//     state (with the exit status once there is one), age, ports, image
//     and command.
//   - inspect prints one job as the host API returns it, as indented JSON.
//   - log prints a job's output, stdout to stdout and stderr to stderr;
//     -f follows it until the job ends, -n N prints the last N lines.
//   - stop stops jobs (SIGTERM, then SIGKILL after their grace period) and
//     prints each one's state once it has ended.
//   - run starts a one-off job of an image with its stdio attached and
//     exits with the job's status; -t gives the job a terminal, with the
//     user's in raw mode and its size followed.
//   - list lists the cluster's hosts, as registered in discoverd (the
//     one of the host --host-url names, or --discoverd-url), with each
//     one's address, status (up, or unreachable when its API does not
//     answer) and job counts; --json prints them as JSON.
//   - gc removes the host's exited job containers beyond a bound and the
//     images nothing uses (see host/gc), and prints what went; --dry-run
//     removes nothing and prints what would go; --all lists what stays.
//   - bootstrap brings a cluster up on this host from a bootstrap manifest
//     (package bootstrap), and exits 3 when the host runs one already.
//   - upgrade moves a bootstrapped cluster's components to the images of
//     a newer build (--images): for each app of the manifest whose image
//     changed, a release with the new image, deployed through the
//     controller (reached by discoverd name with the cluster key), one
//     after the other; it prints a line per component.
//
// Any failure prints "flynn-host: <error>" on stderr and exits 1; `run`
// exits with the job's status instead. The node daemon itself, `flynn-host
// daemon`, is not here: cmd/flynn-host passes it to Main with the others.
package hostcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/pkg/cmdline"
	"github.com/openflynn/flynn/pkg/terminal"
)

// Env is everything the commands take from the process that runs them.
type Env struct {
	// Stdin is sent to `run`'s job; nil is an empty input.
	Stdin io.Reader
	// Stdout and Stderr receive the commands' output (and a job's); nil
	// discards it.
	Stdout, Stderr io.Writer
	// Input is the terminal Stdin is attached to, or nil: `run -t` puts it
	// in raw mode so that keys reach the job as typed.
	Input terminal.Terminal
	// Output is the terminal Stdout is attached to, or nil: `run -t` gives
	// the job its size and follows its resizes.
	Output terminal.Terminal
	// Now is the clock of the ages `ps` prints; default time.Now.
	Now func() time.Time
}

// withDefaults returns a copy of e with its zero fields filled in.
func (e *Env) withDefaults() *Env {
	out := *e
	if out.Stdin == nil {
		out.Stdin = strings.NewReader("")
	}
	if out.Stdout == nil {
		out.Stdout = io.Discard
	}
	if out.Stderr == nil {
		out.Stderr = io.Discard
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	return &out
}

// Main runs flynn-host with the process's arguments, stdio and terminals,
// its operator commands and extra (the daemon), until it is done or
// interrupted (SIGINT, SIGTERM), and returns the status to exit with.
func Main(extra ...*cli.Command) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	// A nil *terminal.TTY must stay a nil interface.
	if t := terminal.New(os.Stdin); t != nil {
		env.Input = t
	}
	if t := terminal.New(os.Stdout); t != nil {
		env.Output = t
	}
	return Run(ctx, os.Args, env, extra...)
}

// Run runs the command line args (args[0] is the program name) with the
// global Flags, extra commands and then Commands, and returns the status to
// exit with: 0, the job's status for `run`, 3 for `bootstrap` on a
// bootstrapped host, or 1 after printing the error.
func Run(ctx context.Context, args []string, env *Env, extra ...*cli.Command) int {
	env = env.withDefaults()
	app := &cli.App{
		Name:      "flynn-host",
		Usage:     "run and inspect Flynn jobs on this host",
		Flags:     Flags(),
		Commands:  append(slices.Clone(extra), Commands(env)...),
		Writer:    env.Stdout,
		ErrWriter: env.Stderr,
	}
	err := app.RunContext(ctx, args)
	if err == nil {
		return 0
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	fmt.Fprintln(env.Stderr, "flynn-host:", err)
	return 1
}

// Flags returns the global flags every command reads the host API from
// (the daemon reads its cluster key from --key too).
func Flags() []cli.Flag {
	return append([]cli.Flag{
		cmdline.String("host-url", "http://127.0.0.1:1113", "host API URL", cmdline.Was("--host")),
	}, cmdline.Secret("cluster-key", "cluster key", cmdline.Was("--key"))...)
}

// Commands returns the operator commands, in the order help lists them.
// Run is how they are meant to run: it gives them the global Flags they
// read and turns a job's status into the status to exit with.
func Commands(env *Env) []*cli.Command {
	env = env.withDefaults()
	return []*cli.Command{
		psCommand(env),
		inspectCommand(env),
		logCommand(env),
		stopCommand(env),
		runCommand(env),
		listCommand(env),
		gcCommand(env),
		bootstrapCommand(env),
		upgradeCommand(env),
	}
}

// exitCode makes the process exit with a status and no message (a job's
// status from `run`).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// hostClient returns the client of the host API the global flags name.
func hostClient(c *cli.Context) *client.Client {
	key, _ := cmdline.SecretOf(c, "cluster-key")
	return client.New(c.String("host-url"), key)
}
