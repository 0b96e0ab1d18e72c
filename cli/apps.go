package cli

import (
	"fmt"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func (r *runner) createCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "create",
		Usage:     "create an app",
		ArgsUsage: "[NAME]",
		Description: `Creates an app (a generated name without NAME) and, inside a git work
tree, adds the git remote "flynn" to push it to and makes sure
~/.ssh/known_hosts holds the cluster's git host key (when the cluster was
added with --git-host-key), so the push is verified.

The app gets the route <app>.<cluster domain> (its web process's URL,
printed here); --no-route makes none, and "flynn route remove" removes it.

Example:
   cd myapp && flynn create example && git push flynn main
   flynn create --stack flynn-trixie example`,
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "remote", Aliases: []string{"r"}, Value: remoteName, Usage: "name of the git remote to add"},
			&urfave.BoolFlag{Name: "no-remote", Usage: "add no git remote"},
			&urfave.BoolFlag{Name: "no-route", Usage: "give the app no default route (<app>.<cluster domain>)"},
			&urfave.StringFlag{Name: "stack", Usage: "the `STACK` the app builds and runs on (flynn stack lists them; default: chosen per push)"},
		},
		Action: r.create,
	}
}

func (r *runner) create(c *urfave.Context) error {
	if c.NArg() > 1 {
		return usageError(c, "want at most one NAME")
	}
	api, err := r.connect(c)
	if err != nil {
		return err
	}
	app := &controller.App{Name: c.Args().First(), Stack: c.String("stack")}
	create := api.CreateApp
	if c.Bool("no-route") {
		create = api.CreateAppWithoutDefaultRoute
	}
	if err := create(c.Context, app); err != nil {
		return err
	}
	fmt.Fprintf(r.env.Stdout, "Created %s\n", app.Name)
	if routes, err := api.AppRoutes(c.Context, app.ID); err == nil {
		if u := appURL(routes, ""); u != "" {
			fmt.Fprintf(r.env.Stdout, "Its URL: %s\n", u)
		}
	}
	if c.Bool("no-remote") || !r.inGitRepo(c.Context) {
		return nil
	}
	remote := c.String("remote")
	existing, err := r.addGitRemote(c.Context, remote, app.Name)
	if err != nil {
		return fmt.Errorf("app created, but: %w", err)
	}
	if existing != "" {
		fmt.Fprintf(r.env.Stderr, "flynn: git remote %q exists already (%s); left as it is\n", remote, existing)
	}
	r.trustGitHost()
	return nil
}

func (r *runner) appsCommand() *urfave.Command {
	return &urfave.Command{
		Name:        "apps",
		Usage:       "list apps",
		Description: "Example:\n   flynn apps\n   flynn apps --json | jq -r '.[].name'",
		Flags:       []urfave.Flag{jsonFlag()},
		Action: func(c *urfave.Context) error {
			api, err := r.connect(c)
			if err != nil {
				return err
			}
			apps, err := api.Apps(c.Context)
			if err != nil {
				return err
			}
			if lookupBool(c, "json") {
				return writeJSON(r.env.Stdout, apps)
			}
			return renderApps(r.env.Stdout, r.env.Now(), apps)
		},
	}
}

// appInfo is what `flynn info` shows; in JSON the app's own fields are at
// the top level.
type appInfo struct {
	*controller.App
	Release   *controller.Release `json:"current_release,omitempty"`
	Processes map[string]int      `json:"processes,omitempty"`
	Routes    []*controller.Route `json:"routes"`
	GitURL    string              `json:"git_url"`
}

func (r *runner) infoCommand() *urfave.Command {
	return &urfave.Command{
		Name:        "info",
		Usage:       "show an app: release, formation, routes, git URL",
		Description: "Example:\n   flynn -a example info",
		Flags:       []urfave.Flag{appFlag(), jsonFlag()},
		Action: func(c *urfave.Context) error {
			api, app, err := r.app(c)
			if err != nil {
				return err
			}
			info := &appInfo{App: app, GitURL: r.cluster.GitURL(app.Name)}
			if app.ReleaseID != "" {
				if info.Release, err = api.Release(c.Context, app.ReleaseID); err != nil {
					return err
				}
				f, err := api.Formation(c.Context, app.ID, app.ReleaseID)
				if err != nil && !httpjson.IsNotFound(err) {
					return err
				}
				if err == nil {
					info.Processes = f.Processes
				}
			}
			if info.Routes, err = api.AppRoutes(c.Context, app.ID); err != nil {
				return err
			}
			if lookupBool(c, "json") {
				return writeJSON(r.env.Stdout, info)
			}
			return renderInfo(r.env.Stdout, r.env.Now(), info)
		},
	}
}

func (r *runner) deleteCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "delete",
		Usage: "delete an app",
		Description: `Deletes the app with its releases' formations, routes and resources, after
you type its name to confirm (or with --yes), and removes the "flynn" git
remote when it points at the app.

Example:
   flynn -a example delete --yes`,
		Flags: append([]urfave.Flag{
			appFlag(),
			&urfave.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation"},
		}, systemFlags()...),
		Action: r.delete,
	}
}

func (r *runner) delete(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "takes no arguments; name the app with -a")
	}
	api, app, err := r.changeApp(c)
	if err != nil {
		return err
	}
	if !c.Bool("yes") {
		fmt.Fprintf(r.env.Stderr, "This deletes app %s and everything it owns. Type its name to confirm: ", app.Name)
		answer, err := r.readLine()
		if err != nil {
			fmt.Fprintln(r.env.Stderr) // end the prompt's line
			return fmt.Errorf("no confirmation read (use --yes to skip it): %w", err)
		}
		if answer != app.Name {
			return fmt.Errorf("confirmation %q does not match %q; nothing deleted", answer, app.Name)
		}
	}
	if _, err := api.DeleteApp(c.Context, app.ID); err != nil {
		return err
	}
	fmt.Fprintf(r.env.Stdout, "Deleted %s\n", app.Name)
	if appFromRemote(r.remoteURL(c.Context, remoteName)) == app.Name {
		if _, err := r.git(c.Context, "remote", "remove", remoteName); err != nil {
			return fmt.Errorf("app deleted, but: %w", err)
		}
		fmt.Fprintf(r.env.Stdout, "Removed git remote %s\n", remoteName)
	}
	return nil
}
