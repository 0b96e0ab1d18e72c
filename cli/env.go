package cli

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
)

func (r *runner) envCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "env",
		Usage: "show or change an app's environment",
		Description: `Without a subcommand, prints the current release's environment as K=V
lines. Every change creates a new release with the new environment and
deploys it, waiting until the deployment has finished (unless --no-wait);
a failed deployment leaves the app at its previous release and exits
non-zero.

Example:
   flynn env set RAILS_ENV=production LOG_LEVEL=debug
   flynn env get RAILS_ENV
   flynn env unset LOG_LEVEL`,
		Flags:  []urfave.Flag{appFlag(), jsonFlag()},
		Action: r.envList,
		Subcommands: []*urfave.Command{
			{
				Name:        "set",
				Usage:       "set variables (a new release)",
				ArgsUsage:   "K=V…",
				Description: "Example:\n   flynn env set RAILS_ENV=production",
				Flags:       append(append([]urfave.Flag{appFlag()}, deployFlags()...), systemFlags()...),
				Action:      r.envSet,
			},
			{
				Name:        "get",
				Usage:       "print one variable",
				ArgsUsage:   "K",
				Description: "Example:\n   flynn env get DATABASE_URL",
				Flags:       []urfave.Flag{appFlag()},
				Action:      r.envGet,
			},
			{
				Name:        "unset",
				Usage:       "remove variables (a new release)",
				ArgsUsage:   "K…",
				Description: "Example:\n   flynn env unset LOG_LEVEL",
				Flags:       append(append([]urfave.Flag{appFlag()}, deployFlags()...), systemFlags()...),
				Action:      r.envUnset,
			},
		},
	}
}

// currentRelease returns the app and its current release; for an app with
// no release yet it returns the client and the app with errNoRelease.
func (r *runner) currentRelease(c *urfave.Context) (*client.Client, *controller.App, *controller.Release, error) {
	api, app, err := r.app(c)
	if err != nil {
		return nil, nil, nil, err
	}
	if app.ReleaseID == "" {
		return api, app, nil, errNoRelease
	}
	rel, err := api.Release(c.Context, app.ReleaseID)
	if err != nil {
		return nil, nil, nil, err
	}
	return api, app, rel, nil
}

func (r *runner) envList(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "unknown subcommand %q", c.Args().First())
	}
	_, _, rel, err := r.currentRelease(c)
	if errors.Is(err, errNoRelease) {
		rel, err = &controller.Release{}, nil
	}
	if err != nil {
		return err
	}
	env := rel.Env
	if env == nil {
		env = map[string]string{}
	}
	if lookupBool(c, "json") {
		return writeJSON(r.env.Stdout, env)
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(r.env.Stdout, "%s=%s\n", k, env[k])
	}
	return nil
}

func (r *runner) envGet(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want one K")
	}
	_, app, rel, err := r.currentRelease(c)
	if errors.Is(err, errNoRelease) {
		rel, err = &controller.Release{}, nil
	}
	if err != nil {
		return err
	}
	v, ok := rel.Env[c.Args().First()]
	if !ok {
		return fmt.Errorf("%s is not set for %s", c.Args().First(), app.Name)
	}
	fmt.Fprintln(r.env.Stdout, v)
	return nil
}

func (r *runner) envSet(c *urfave.Context) error {
	if c.NArg() == 0 {
		return usageError(c, "want K=V…")
	}
	set := map[string]string{}
	for _, a := range c.Args().Slice() {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return usageError(c, "%q is not K=V", a)
		}
		set[k] = v
	}
	return r.changeEnv(c, &controller.EnvPatch{Set: set})
}

func (r *runner) envUnset(c *urfave.Context) error {
	if c.NArg() == 0 {
		return usageError(c, "want K…")
	}
	return r.changeEnv(c, &controller.EnvPatch{Unset: c.Args().Slice()})
}

// changeEnv has the controller make a release that copies the current one
// with its env changed by change, and deploy it. Releases are immutable,
// so a change of env is a new release, which `rollback` can undo.
//
// The controller applies the change to the release current when it gets
// it (PATCH /apps/:id/release), never to one read here before: an env
// change made meanwhile by someone else, or a push that finished
// meanwhile, is kept, not undone.
//
// Before an app's first push there is no release to copy: the change makes
// a release of config alone (no artifact, nothing to run), as Heroku lets
// config vars (BUILDPACK_URL, say) be set before the first push; the push
// builds with them and keeps them.
func (r *runner) changeEnv(c *urfave.Context, change *controller.EnvPatch) error {
	api, app, err := r.changeApp(c)
	if err != nil {
		return err
	}
	return r.patchRelease(c, api, app, controller.ReleasePatch{Env: change})
}

// patchRelease has the controller make the app's next release from its
// current one changed by patch, and follows the deployment as
// deployRelease does.
func (r *runner) patchRelease(c *urfave.Context, api *client.Client, app *controller.App, patch controller.ReleasePatch) error {
	ctx := c.Context
	var (
		watch *client.DeploymentWatch
		err   error
	)
	if !c.Bool("no-wait") {
		// Opened first, so that it misses nothing of the deployment.
		if watch, err = api.WatchDeployments(ctx, app.ID); err != nil {
			return err
		}
		defer watch.Close()
	}
	start := r.env.Now()
	patched, err := api.PatchRelease(ctx, app.ID, patch)
	if err != nil {
		return err
	}
	rel, d := patched.Release, patched.Deployment
	switch {
	case d == nil && rel == nil:
		fmt.Fprintf(r.env.Stdout, "Nothing changed; %s has no release.\n", app.Name)
		return nil
	case d == nil:
		fmt.Fprintf(r.env.Stdout, "Nothing changed; %s stays at %s.\n", app.Name, controller.ReleaseVersion(rel.Version))
		return nil
	case rel.ArtifactID == "":
		// Nothing runs: the deployment is complete at once.
		fmt.Fprintf(r.env.Stdout, "Set config of %s (release %s); the next push builds and runs with it.\n", app.Name, controller.ReleaseVersion(rel.Version))
		return nil
	case watch == nil:
		fmt.Fprintf(r.env.Stdout, "Created release %s of %s; it is deploying.\n", controller.ReleaseVersion(rel.Version), app.Name)
		return nil
	}
	return r.waitDeployment(c, api, watch, app, rel, d, start)
}
