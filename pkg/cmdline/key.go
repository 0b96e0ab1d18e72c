package cmdline

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/urfave/cli/v2"
)

// InsecureFlag is the name of the flag that lets a daemon run without the
// key that guards its API (see RequiredKey).
const InsecureFlag = "insecure"

// Insecure is the --insecure flag (FLYNN_INSECURE) of a daemon whose API a
// key guards. Every such daemon takes it, and reads its key with
// RequiredKey.
func Insecure() *cli.BoolFlag {
	return Bool(InsecureFlag, false, "run without a key although the API then admits everyone (development only; logs a warning)")
}

// RequiredKey returns the value of the Secret name (see SecretOf): the key
// that guards the daemon's API. Flynn's servers admit every request when
// their key is empty, so an empty key is a usage error, naming the flag and
// --insecure, unless --insecure is given; then RequiredKey returns "" and
// logs a warning saying that anyone who reaches the daemon may use it.
// A daemon that calls RequiredKey must define the Insecure flag.
func RequiredKey(c *cli.Context, logger *slog.Logger, name string) (string, error) {
	key, err := SecretOf(c, name)
	if err != nil || key != "" {
		return key, err
	}
	if !hasFlag(c, InsecureFlag) {
		// A daemon's own mistake, which its command-line test shows.
		return "", errors.New("cmdline: RequiredKey needs the daemon to define --" + InsecureFlag)
	}
	if !c.Bool(InsecureFlag) {
		return "", fmt.Errorf("no %s: give it with --%s-file or $%s, or pass --%s to run without one (then anyone who reaches this daemon may use its API)",
			name, name, Env(name), InsecureFlag)
	}
	logger.Warn("RUNNING WITHOUT A KEY (--"+InsecureFlag+"): anyone who reaches this daemon may use its API; never run so where others can connect",
		"missing", "--"+name+"-file or $"+Env(name))
	return "", nil
}

// hasFlag reports whether the command of c, or one above it, defines the
// flag name.
func hasFlag(c *cli.Context, name string) bool {
	named := func(f cli.Flag) bool { return slices.Contains(f.Names(), name) }
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && slices.ContainsFunc(ctx.Command.Flags, named) {
			return true
		}
		if ctx.App != nil && slices.ContainsFunc(ctx.App.Flags, named) {
			return true
		}
	}
	return false
}
