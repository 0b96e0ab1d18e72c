package cli

import (
	"fmt"

	urfave "github.com/urfave/cli/v2"
)

// Heroku's names for flynn's commands, so that a Heroku user's habits
// work: `flynn logs`, `flynn releases`, `flynn config:set K=V`. Each is
// the command itself under another name, with the same flags and the same
// output. A plain other name is a urfave alias, which help shows beside
// the command's name; a name of another shape (Heroku's topic:command
// forms, or a name for a subcommand) is a copy of the command, hidden so
// that help lists every command once.

// addAliases gives top-level commands their other names.
func addAliases(cmds []*urfave.Command) {
	aliases := map[string][]string{
		"log": {"logs"},
		"env": {"config"},
	}
	for _, c := range cmds {
		c.Aliases = append(c.Aliases, aliases[c.Name]...)
	}
}

// herokuCommands are the hidden copies of commands under Heroku's names.
// Each copy is built afresh, sharing no flag with the command it copies.
func (r *runner) herokuCommands() []*urfave.Command {
	return []*urfave.Command{
		hiddenCopy("releases", subcommand(r.releaseCommand(), "list")),
		hiddenCopy("routes", subcommand(r.routeCommand(), "list")),
		hiddenCopy("config:set", subcommand(r.envCommand(), "set")),
		hiddenCopy("config:get", subcommand(r.envCommand(), "get")),
		hiddenCopy("config:unset", subcommand(r.envCommand(), "unset")),
		hiddenCopy("ps:scale", r.scaleCommand()),
		hiddenCopy("ps:restart", r.restartCommand()),
		hiddenCopy("apps:create", r.createCommand()),
		hiddenCopy("apps:info", r.infoCommand()),
		hiddenCopy("apps:destroy", r.deleteCommand()),
		hiddenCopy("apps:open", r.openCommand()),
		hiddenCopy("domains:add", subcommand(r.routeCommand(), "add", "http")),
	}
}

// hiddenCopy renames cmd to name and hides it from help.
func hiddenCopy(name string, cmd *urfave.Command) *urfave.Command {
	cmd.Name, cmd.Aliases, cmd.HelpName, cmd.Hidden = name, nil, "", true
	return cmd
}

// subcommand returns the subcommand of cmd at path; a path that does not
// exist is a bug in the tree above, caught by the tests.
func subcommand(cmd *urfave.Command, path ...string) *urfave.Command {
	for _, name := range path {
		sub := findCommand(cmd.Subcommands, name)
		if sub == nil {
			panic(fmt.Sprintf("flynn %s has no subcommand %q", cmd.Name, name))
		}
		cmd = sub
	}
	return cmd
}
