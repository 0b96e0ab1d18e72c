package cli

import (
	"strings"

	urfave "github.com/urfave/cli/v2"
)

// commandsWithTrailingArgs take everything after their first argument as
// is: `flynn run ls -l` runs `ls -l`.
var commandsWithTrailingArgs = map[string]bool{"run": true}

// interspersed moves the flags that follow a command's arguments before
// them, so `flynn route add http example.com --sticky` works: urfave/cli v2
// (like the flag package) stops at the first argument. Flags of each
// command stay after that command's name; "--" ends flag parsing as usual.
func interspersed(app *urfave.App, args []string) []string {
	if len(args) == 0 || args[len(args)-1] == "--generate-bash-completion" {
		return args // completion looks at the last argument
	}
	out := []string{args[0]}
	rest := args[1:]
	flags := app.Flags
	cmds := app.Commands
	var cmd *urfave.Command
	for {
		// Flags of the current level, then a subcommand name.
		for len(rest) > 0 && isFlag(rest[0]) {
			n := flagLen(flags, rest)
			out, rest = append(out, rest[:n]...), rest[n:]
		}
		if len(rest) == 0 {
			return out
		}
		next := findCommand(cmds, rest[0])
		if next == nil {
			break
		}
		cmd = next
		out, rest = append(out, rest[0]), rest[1:]
		flags, cmds = cmd.Flags, cmd.Subcommands
	}
	if cmd == nil || commandsWithTrailingArgs[cmd.Name] {
		return append(out, rest...)
	}
	var positional []string
	for len(rest) > 0 {
		switch {
		case rest[0] == "--":
			positional, rest = append(positional, rest[1:]...), nil
		case isFlag(rest[0]):
			n := flagLen(flags, rest)
			out, rest = append(out, rest[:n]...), rest[n:]
		default:
			positional, rest = append(positional, rest[0]), rest[1:]
		}
	}
	if len(positional) > 0 {
		out = append(append(out, "--"), positional...)
	}
	return out
}

func isFlag(arg string) bool { return len(arg) > 1 && arg[0] == '-' && arg != "--" }

// flagLen is how many arguments the flag at rest[0] takes up: two when it
// takes a value that is not given with "=".
func flagLen(flags []urfave.Flag, rest []string) int {
	name := strings.TrimLeft(rest[0], "-")
	if strings.Contains(name, "=") || len(rest) == 1 {
		return 1
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if _, isBool := f.(*urfave.BoolFlag); isBool {
				return 1
			}
			return 2
		}
	}
	return 1 // --help, or unknown: urfave reports it
}

func findCommand(cmds []*urfave.Command, name string) *urfave.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
