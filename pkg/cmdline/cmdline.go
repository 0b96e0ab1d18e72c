// Package cmdline is how Flynn's daemons read their command line, so that
// every binary's flags follow one convention and their help reads alike:
//
//   - a flag --x-y may also be set as FLYNN_X_Y in the environment;
//   - a secret is never an argument: it is read from --x-file, or from
//     FLYNN_X (its value), so that no key shows in `ps`;
//   - a daemon whose API a key guards refuses to start without it unless
//     --insecure is given (RequiredKey), since its server would admit
//     everyone;
//   - sizes are bytes or a number with KiB, MiB, GiB or TiB (512MiB);
//   - every daemon takes --log-level and --log-format;
//   - a renamed flag or variable keeps working, with a warning, for one
//     release (Was).
//
// A daemon is described by a Daemon value, whose Config turns a parsed
// command line into the Config its Run takes; a binary's main is then one
// call, cmdline.Main(server.Daemon()).
package cmdline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

// Env returns the environment variable that may set flag name:
// "discoverd-url" → "FLYNN_DISCOVERD_URL".
func Env(name string) string {
	return "FLYNN_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Option changes a flag built by this package.
type Option func(*names)

// names are a flag's deprecated names: old flags (aliases) and old
// environment variables.
type names struct {
	aliases []string
	envs    []string
}

// Was lists the names a flag had before: "--old-flag" for a flag,
// "OLD_VAR" for an environment variable. They keep working for one release;
// using one logs a warning naming the new one.
func Was(old ...string) Option {
	return func(n *names) {
		for _, o := range old {
			if strings.HasPrefix(o, "-") {
				n.aliases = append(n.aliases, strings.TrimLeft(o, "-"))
			} else {
				n.envs = append(n.envs, o)
			}
		}
	}
}

func apply(name string, opts []Option) names {
	n := names{envs: []string{Env(name)}}
	for _, o := range opts {
		o(&n)
	}
	return n
}

// String is a string flag.
func String(name, value, usage string, opts ...Option) *cli.StringFlag {
	n := apply(name, opts)
	return &cli.StringFlag{Name: name, Value: value, Usage: usage, EnvVars: n.envs, Aliases: n.aliases}
}

// Bool is a boolean flag.
func Bool(name string, value bool, usage string, opts ...Option) *cli.BoolFlag {
	n := apply(name, opts)
	return &cli.BoolFlag{Name: name, Value: value, Usage: usage, EnvVars: n.envs, Aliases: n.aliases}
}

// Int is an integer flag.
func Int(name string, value int, usage string, opts ...Option) *cli.IntFlag {
	n := apply(name, opts)
	return &cli.IntFlag{Name: name, Value: value, Usage: usage, EnvVars: n.envs, Aliases: n.aliases}
}

// Duration is a duration flag ("90s", "5m").
func Duration(name string, value time.Duration, usage string, opts ...Option) *cli.DurationFlag {
	n := apply(name, opts)
	return &cli.DurationFlag{Name: name, Value: value, Usage: usage, EnvVars: n.envs, Aliases: n.aliases}
}

// List is a flag of several values: repeated, or comma-separated in one
// value or in the environment.
func List(name, usage string, opts ...Option) *cli.StringSliceFlag {
	n := apply(name, opts)
	return &cli.StringSliceFlag{Name: name, Usage: usage, EnvVars: n.envs, Aliases: n.aliases}
}

// ListOf returns a List flag's values, split at commas, without empty ones.
func ListOf(c *cli.Context, name string) []string {
	var out []string
	for _, v := range c.StringSlice(name) {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// Size is a size flag: bytes, or a number with KiB, MiB, GiB or TiB. Read
// it with SizeOf.
func Size(name string, value int64, usage string, opts ...Option) *cli.GenericFlag {
	n := apply(name, opts)
	v := SizeValue(value)
	return &cli.GenericFlag{Name: name, Value: &v, Usage: usage, EnvVars: n.envs, Aliases: n.aliases, DefaultText: FormatSize(value)}
}

// SizeOf returns the value of a Size flag.
func SizeOf(c *cli.Context, name string) int64 {
	if v, ok := c.Generic(name).(*SizeValue); ok && v != nil {
		return int64(*v)
	}
	return 0
}

// ListenAddr returns the value of a listen-address flag, or ":$PORT" when
// neither the flag nor its variable was set and PORT is: the port flynn-host
// gave the daemon's job.
func ListenAddr(c *cli.Context, name string) string {
	if port := os.Getenv("PORT"); port != "" && !c.IsSet(name) {
		return ":" + port
	}
	return c.String(name)
}

// JobPortAddr returns the value of a listen-address flag when it is set
// (even to "", which may mean none), else, in a job (when flynn-host set
// $PORT_<n>, the job's n-th port), that port on the node's address, the
// --external-ip flag's value; else the flag's default. It is for a
// listener the cluster reaches from other nodes, such as a metrics
// listener that flynn-host registers in discoverd, unlike ListenAddr's
// ":$PORT" on every interface.
func JobPortAddr(c *cli.Context, name string, n int) string {
	if port := os.Getenv("PORT_" + strconv.Itoa(n)); port != "" && !c.IsSet(name) {
		return net.JoinHostPort(c.String("external-ip"), port)
	}
	return c.String(name)
}

// Secret is a secret's two flags: --NAME-file, a file holding it, and a
// hidden --NAME set by FLYNN_NAME (its value) or, deprecated, by an
// argument. Read it with SecretOf.
func Secret(name, usage string, opts ...Option) []cli.Flag {
	n := apply(name, opts)
	return []cli.Flag{
		&cli.StringFlag{Name: name + "-file", Usage: usage + " (a file holding it; or its value in $" + Env(name) + ")", EnvVars: []string{Env(name + "-file")}},
		&cli.StringFlag{Name: name, Hidden: true, EnvVars: n.envs, Aliases: n.aliases},
	}
}

// SecretOf returns a Secret's value: the file's content without its final
// newline when --NAME-file is set, else FLYNN_NAME (or a deprecated name).
// A subcommand's secret may also be given to the command above it
// (flynn-host --cluster-key-file F daemon).
func SecretOf(c *cli.Context, name string) (string, error) {
	for _, ctx := range c.Lineage() {
		if ctx.IsSet(name + "-file") {
			path := ctx.String(name + "-file")
			b, err := os.ReadFile(path)
			if err != nil {
				return "", fmt.Errorf("--%s-file: %w", name, err)
			}
			return strings.TrimRight(string(b), "\r\n"), nil
		}
		if ctx.IsSet(name) {
			return ctx.String(name), nil
		}
	}
	return "", nil
}

// Daemon describes a daemon binary: its flags, how they become the Config
// its Run takes, and Run itself.
type Daemon[C any] struct {
	// Name is the binary's name; it is also the logger's component.
	Name string
	// Usage is one line saying what it is; Description may say more.
	Usage, Description string
	// Flags are the daemon's own flags; --log-level and --log-format are
	// added.
	Flags []cli.Flag
	// Config builds the Config from the parsed command line; an error is a
	// usage error (exit status 2).
	Config func(c *cli.Context, logger *slog.Logger) (C, error)
	// Run runs the daemon until ctx ends; an error ends the process with
	// status 1.
	Run func(ctx context.Context, cfg C, logger *slog.Logger) error
	// Commands are subcommands beside the daemon itself (gitreceive's
	// hook), if any.
	Commands []*cli.Command
}

// usageError marks errors of the command line, which exit with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Command returns the daemon as a subcommand (flynn-host daemon).
func (d Daemon[C]) Command(name string) *cli.Command {
	return &cli.Command{
		Name:        name,
		Usage:       d.Usage,
		Description: d.Description,
		Flags:       withLogFlags(d.Flags),
		Action:      d.action,
	}
}

// App returns the daemon as a whole program.
func (d Daemon[C]) App() *cli.App {
	return &cli.App{
		Name:            d.Name,
		Usage:           d.Usage,
		Description:     d.Description,
		Flags:           withLogFlags(d.Flags),
		Action:          d.action,
		Commands:        d.Commands,
		HideHelpCommand: true,
	}
}

func (d Daemon[C]) action(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(c.Args().Slice(), " "))}
	}
	level := c.String("log-level")
	if c.Bool("debug") && !c.IsSet("log-level") {
		level = "debug"
	}
	logger, err := NewLogger(c.App.ErrWriter, c.String("log-format"), level)
	if err != nil {
		return usageError{err}
	}
	logger = logger.With("component", d.Name)
	for _, w := range Deprecations(c, os.Args) {
		logger.Warn(w)
	}
	cfg, err := d.Config(c, logger)
	if err != nil {
		return usageError{err}
	}
	return d.Run(c.Context, cfg, logger)
}

// Main runs the daemon with the process's arguments until SIGINT or
// SIGTERM, and exits: 0 when it stopped cleanly, 1 when Run failed, 2 for
// a usage error.
func Main[C any](d Daemon[C]) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := Execute(ctx, d.App(), os.Args, os.Stderr)
	stop()
	os.Exit(code)
}

// Execute runs app with args (args[0] is the program's name) and returns
// the exit status; errors are written to stderr as one line.
func Execute(ctx context.Context, app *cli.App, args []string, stderr io.Writer) int {
	app.ErrWriter = stderr
	app.ExitErrHandler = func(*cli.Context, error) {} // Execute reports
	err := app.RunContext(ctx, args)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue) || isFlagError(err):
		fmt.Fprintf(stderr, "%s: %v (see --help)\n", app.Name, err)
		return 2
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return 0
	}
	var coder cli.ExitCoder
	if errors.As(err, &coder) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintf(stderr, "%s: %s\n", app.Name, msg)
		}
		return coder.ExitCode()
	}
	fmt.Fprintf(stderr, "%s: %v\n", app.Name, err)
	return 1
}

// isFlagError reports whether err is urfave's complaint about the flags
// themselves (an unknown flag, a value that does not parse).
func isFlagError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "flag provided but not defined") || strings.HasPrefix(msg, "invalid value")
}

// Deprecations returns a warning for each deprecated name the command line
// used: an old flag in args, or an old environment variable that set a
// flag whose FLYNN_ variable is unset; and for each secret given as an
// argument.
func Deprecations(c *cli.Context, args []string) []string {
	var out []string
	given := map[string]bool{}
	for _, a := range args[min(1, len(args)):] {
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") {
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			given[name] = true
		}
	}
	for _, f := range c.Command.Flags {
		fnames := f.Names()
		name := fnames[0]
		for _, alias := range fnames[1:] {
			if given[alias] {
				out = append(out, fmt.Sprintf("--%s is deprecated; use %s", alias, newName(f)))
			}
		}
		if name == "debug" && given[name] {
			out = append(out, "--debug is deprecated; use --log-level debug")
		}
		if sf, ok := f.(*cli.StringFlag); ok && sf.Hidden && given[name] {
			out = append(out, fmt.Sprintf("--%s puts a secret in the process list; use --%s-file or $%s", name, name, Env(name)))
		}
		envs := envVars(f)
		if len(envs) < 2 || os.Getenv(envs[0]) != "" || slices.ContainsFunc(fnames, func(n string) bool { return given[n] }) {
			continue
		}
		for _, old := range envs[1:] {
			if os.Getenv(old) != "" {
				out = append(out, fmt.Sprintf("$%s is deprecated; use %s", old, newName(f)))
				break
			}
		}
	}
	return out
}

// newName is how a flag is set now: "--x or $FLYNN_X", or for a secret
// "--x-file or $FLYNN_X".
func newName(f cli.Flag) string {
	name := f.Names()[0]
	if sf, ok := f.(*cli.StringFlag); ok && sf.Hidden {
		return fmt.Sprintf("--%s-file or $%s", name, Env(name))
	}
	return fmt.Sprintf("--%s or $%s", name, Env(name))
}

func envVars(f cli.Flag) []string {
	if e, ok := f.(interface{ GetEnvVars() []string }); ok {
		return e.GetEnvVars()
	}
	return nil
}

// withLogFlags returns flags and the logging flags every daemon has, but
// for those flags defines itself.
func withLogFlags(flags []cli.Flag) []cli.Flag {
	out := slices.Clone(flags)
	for _, lf := range logFlags() {
		if !slices.ContainsFunc(flags, func(f cli.Flag) bool { return f.Names()[0] == lf.Names()[0] }) {
			out = append(out, lf)
		}
	}
	return out
}

// logFlags are every daemon's logging flags.
func logFlags() []cli.Flag {
	return []cli.Flag{
		String("log-level", "info", "least severe log lines written: debug, info, warn or error"),
		String("log-format", "text", "log line format: text (key=value) or json"),
		// --debug came before --log-level in some daemons.
		&cli.BoolFlag{Name: "debug", Hidden: true},
	}
}

// NewLogger returns a logger writing to w in format ("text" or "json")
// from level ("debug", "info", "warn" or "error") up.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
