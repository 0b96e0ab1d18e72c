package cli

import (
	urfave "github.com/urfave/cli/v2"
)

// newApp builds the command tree. It is built afresh for every Run: urfave
// flags remember whether they were set.
func newApp(r *runner) *urfave.App {
	app := &urfave.App{
		Name:                 "flynn",
		Usage:                "deploy and run apps on a Flynn cluster",
		Version:              r.env.Version,
		HideVersion:          true, // our -v/--version (below) prints what `flynn version` does
		EnableBashCompletion: true,
		Suggest:              true,
		Reader:               r.env.Stdin,
		Writer:               r.env.Stdout,
		ErrWriter:            r.env.Stderr,
		Description: `Every app command works on -a APP; else on the app of the git remote that
-r REMOTE names; else on $FLYNN_APP; else on the app of the "flynn" git
remote in the current directory.

Heroku's command names work too: logs, releases, routes, config,
config:set, config:get, config:unset, ps:scale, ps:restart, apps:create,
apps:info, apps:destroy, apps:open, domains:add.

System apps (the platform's own: the controller, the router, …) may be
changed only with --system, which makes the call with the cluster key, read
from $FLYNN_CLUSTER_KEY or --cluster-key-file.

Example:
   flynn cluster add -p <pin> -g 127.0.0.1:2222 default example.com - <<<KEY
   flynn create example && git push flynn main && flynn scale web=3`,
		Flags: append([]urfave.Flag{
			&urfave.StringFlag{Name: "cluster", Aliases: []string{"c"}, Usage: "the cluster to use (default: $FLYNN_CLUSTER, else the configured default)"},
			appFlag(),
			remoteFlag(),
			jsonFlag(),
			&urfave.BoolFlag{Name: "version", Aliases: []string{"v"}, Usage: "print the version, as the version command does"},
		}, systemFlags()...),
		Action: func(c *urfave.Context) error {
			if c.Bool("version") {
				return r.version(c)
			}
			// What urfave does without an Action: the help, or "No help
			// topic" for an unknown command.
			return c.App.Command("help").Action(c)
		},
		Commands: []*urfave.Command{
			r.clusterCommand(),
			r.keyCommand(),
			r.apiKeyCommand(),
			r.createCommand(),
			r.appsCommand(),
			r.hostsCommand(),
			r.infoCommand(),
			r.openCommand(),
			r.remoteCommand(),
			r.deleteCommand(),
			r.scaleCommand(),
			r.psCommand(),
			r.killCommand(),
			r.restartCommand(),
			r.logCommand(),
			r.metricsCommand(),
			r.envCommand(),
			r.limitCommand(),
			r.releaseCommand(),
			r.dockerCommand(),
			r.rollbackCommand(),
			r.runCommand(),
			r.routeCommand(),
			r.resourceCommand(),
			r.pgCommand(),
			r.stackCommand(),
			r.versionCommand(),
			r.completionCommand(),
			r.appNamesCommand(),
		},
		// Errors are printed once, by Run, as one line.
		ExitErrHandler: func(*urfave.Context, error) {},
		OnUsageError:   onUsageError,
	}
	app.Commands = append(app.Commands, r.herokuCommands()...)
	addAliases(app.Commands)
	addRemoteFlags(app.Commands)
	setUsageErrors(app.Commands)
	return app
}

// onUsageError keeps a usage error to one line that points at the help.
func onUsageError(c *urfave.Context, err error, _ bool) error {
	name := "flynn"
	if c.Command != nil && c.Command.HelpName != "" {
		name = c.Command.HelpName
	}
	return &usageErr{msg: err.Error() + " (see `" + name + " --help`)"}
}

type usageErr struct{ msg string }

func (e *usageErr) Error() string { return e.msg }

func setUsageErrors(cmds []*urfave.Command) {
	for _, c := range cmds {
		c.OnUsageError = onUsageError
		setUsageErrors(c.Subcommands)
	}
}

// appFlag is -a, accepted before and after the command name.
func appFlag() urfave.Flag {
	return &urfave.StringFlag{Name: "app", Aliases: []string{"a"}, Usage: "the app (default: -r's git remote, else $FLYNN_APP, else the flynn git remote)"}
}

// systemFlags are --system and --cluster-key-file, accepted before the
// command name and after the name of every command that changes apps.
func systemFlags() []urfave.Flag {
	return []urfave.Flag{
		&urfave.BoolFlag{Name: "system", Usage: "allow changing a system app, with the cluster key instead of your API key"},
		&urfave.StringFlag{Name: "cluster-key-file", Usage: "`FILE` holding the cluster key for --system (default: $FLYNN_CLUSTER_KEY)"},
	}
}

// jsonFlag is --json, accepted before and after the command name.
func jsonFlag() urfave.Flag {
	return &urfave.BoolFlag{Name: "json", Usage: "print JSON for scripts"}
}
