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
		HideVersion:          true, // `flynn version` prints it
		EnableBashCompletion: true,
		Suggest:              true,
		Reader:               r.env.Stdin,
		Writer:               r.env.Stdout,
		ErrWriter:            r.env.Stderr,
		Description: `Every app command works on -a APP, or else on the app of the "flynn" git
remote in the current directory.

System apps (the platform's own: the controller, the router, …) may be
changed only with --system, which makes the call with the cluster key, read
from $FLYNN_CLUSTER_KEY or --cluster-key-file.

Example:
   flynn cluster add -p <pin> -g 127.0.0.1:2222 default example.com - <<<KEY
   flynn create example && git push flynn main && flynn scale web=3`,
		Flags: append([]urfave.Flag{
			&urfave.StringFlag{Name: "cluster", Aliases: []string{"c"}, Usage: "the cluster to use (default: $FLYNN_CLUSTER, else the configured default)"},
			appFlag(),
			jsonFlag(),
		}, systemFlags()...),
		Commands: []*urfave.Command{
			r.clusterCommand(),
			r.keyCommand(),
			r.apiKeyCommand(),
			r.createCommand(),
			r.appsCommand(),
			r.hostsCommand(),
			r.infoCommand(),
			r.deleteCommand(),
			r.scaleCommand(),
			r.psCommand(),
			r.killCommand(),
			r.logCommand(),
			r.metricsCommand(),
			r.envCommand(),
			r.limitCommand(),
			r.releaseCommand(),
			r.rollbackCommand(),
			r.runCommand(),
			r.routeCommand(),
			r.resourceCommand(),
			r.pgCommand(),
			r.versionCommand(),
			r.completionCommand(),
		},
		// Errors are printed once, by Run, as one line.
		ExitErrHandler: func(*urfave.Context, error) {},
		OnUsageError:   onUsageError,
	}
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
	return &urfave.StringFlag{Name: "app", Aliases: []string{"a"}, Usage: "the app (default: the app of the flynn git remote)"}
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
