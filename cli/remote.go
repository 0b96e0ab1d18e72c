package cli

import (
	"errors"
	"fmt"

	urfave "github.com/urfave/cli/v2"
)

func (r *runner) remoteCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "remote",
		Usage: "manage the git remotes of apps",
		Description: `Example:
   flynn -a example remote add
   flynn -a example-staging remote add staging`,
		Subcommands: []*urfave.Command{
			{
				Name:      "add",
				Usage:     "add the git remote of an existing app",
				ArgsUsage: "[REMOTE]",
				Description: `Adds the git remote REMOTE (default "flynn") for the app, the one
` + "`flynn create`" + ` adds for a new app, to push it from another clone, and makes
sure ~/.ssh/known_hosts holds the cluster's git host key, as create does.
A remote of that name pointing elsewhere is refused, never changed (Heroku's
git:remote would change it): git remote set-url does that knowingly.

Example:
   git clone https://github.com/me/example && cd example && flynn -a example remote add
   flynn -a example-staging remote add staging && git push staging main`,
				Flags:  []urfave.Flag{appFlag()},
				Action: r.remoteAdd,
			},
		},
	}
}

func (r *runner) remoteAdd(c *urfave.Context) error {
	if c.NArg() > 1 {
		return usageError(c, "want at most one REMOTE")
	}
	remote := c.Args().First()
	if remote == "" {
		remote = remoteName
	}
	if !r.inGitRepo(c.Context) {
		return errors.New("not in a git work tree: run this in the app's clone (or `git init` first)")
	}
	_, app, err := r.app(c)
	if err != nil {
		return err
	}
	existing, err := r.addGitRemote(c.Context, remote, app.Name)
	if err != nil {
		return err
	}
	switch want := r.cluster.GitURL(app.Name); existing {
	case "":
	case want:
		fmt.Fprintf(r.env.Stdout, "Git remote %s is %s's already: %s\n", remote, app.Name, want)
	default:
		return fmt.Errorf("git remote %q exists already and points at %s; remove it (git remote remove %s) or name another: flynn remote add NAME", remote, existing, remote)
	}
	r.trustGitHost()
	return nil
}
