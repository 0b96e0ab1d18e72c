package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
)

// crashLines is how many of a crashed job's last lines are shown.
const crashLines = 10

// deployFlags are the flags of every command that deploys a release.
func deployFlags() []urfave.Flag {
	return []urfave.Flag{
		&urfave.BoolFlag{Name: "no-wait", Aliases: []string{"n"}, Usage: "return once the release is created, without waiting for its deployment"},
		&urfave.DurationFlag{Name: "timeout", Aliases: []string{"t"}, Value: 5 * time.Minute, Usage: "how long to wait for the deployment"},
	}
}

// crashReporter tells, once per job, that a job crashed: its exit status
// and its last lines, so that a failing scale or deploy says why.
type crashReporter struct {
	api  *client.Client
	app  *controller.App
	out  io.Writer
	seen map[string]bool
}

func newCrashReporter(api *client.Client, app *controller.App, out io.Writer) *crashReporter {
	return &crashReporter{api: api, app: app, out: out, seen: map[string]bool{}}
}

// crashed reports whether j ended by itself (crashed or failed to start).
func crashed(j *controller.Job) bool {
	return j.State == controller.JobStateCrashed || j.State == controller.JobStateFailed
}

// report prints j's crash the first time it is seen crashed, and says
// whether it did.
func (cr *crashReporter) report(ctx context.Context, j *controller.Job) bool {
	if !crashed(j) || cr.seen[j.ID] {
		return false
	}
	cr.seen[j.ID] = true
	if j.ExitStatus == nil && j.Error != "" {
		// It never ran: no output, but the host's reason.
		fmt.Fprintf(cr.out, "  %s failed to start: %s\n", jobLabel(j), j.Error)
		return true
	}
	how := "failed to start"
	if j.ExitStatus != nil {
		how = fmt.Sprintf("exited with status %d", *j.ExitStatus)
	}
	lines, err := cr.api.LastLines(ctx, cr.app.ID, j.ID, crashLines)
	switch {
	case err != nil:
		fmt.Fprintf(cr.out, "  %s %s (its output is not available: %v)\n", jobLabel(j), how, err)
	case len(lines) == 0:
		fmt.Fprintf(cr.out, "  %s %s without writing any output\n", jobLabel(j), how)
	default:
		fmt.Fprintf(cr.out, "  %s %s; its last lines:\n", jobLabel(j), how)
		for _, l := range lines {
			fmt.Fprintf(cr.out, "    %s", l)
		}
	}
	return true
}

// deployRelease makes rel the app's current release and, unless
// --no-wait, follows the deployment to its end, reporting crashed jobs as
// they happen. A failed deployment is an error: the app stays at (or is
// back at) the release it had.
func (r *runner) deployRelease(c *urfave.Context, api *client.Client, app *controller.App, rel *controller.Release) error {
	ctx := c.Context
	version := controller.ReleaseVersion(rel.Version)
	if c.Bool("no-wait") {
		if _, err := api.Deploy(ctx, app.ID, rel.ID); err != nil {
			return fmt.Errorf("release %s created but not deployed: %w", version, err)
		}
		fmt.Fprintf(r.env.Stdout, "Created release %s of %s; it is deploying.\n", version, app.Name)
		return nil
	}
	watch, err := api.WatchDeployments(ctx, app.ID)
	if err != nil {
		return err
	}
	defer watch.Close()
	start := r.env.Now()
	d, err := api.Deploy(ctx, app.ID, rel.ID)
	if err != nil {
		return fmt.Errorf("release %s created but not deployed: %w", version, err)
	}
	return r.waitDeployment(c, api, watch, app, rel, d, start)
}

// waitDeployment follows d, the deployment of rel that began at start, to
// its end through watch (opened before d was made, so that it misses
// nothing), reporting crashed jobs as they happen. A failed deployment is
// an error: the app stays at (or is back at) the release it had.
func (r *runner) waitDeployment(c *urfave.Context, api *client.Client, watch *client.DeploymentWatch, app *controller.App, rel *controller.Release, d *controller.Deployment, start time.Time) error {
	ctx := c.Context
	version := controller.ReleaseVersion(rel.Version)
	if !client.DeploymentFinished(d) {
		fmt.Fprintf(r.env.Stdout, "Deploying release %s of %s…\n", version, app.Name)
	}
	crashes := newCrashReporter(api, app, r.env.Stdout)
	waitCtx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
	defer cancel()
	d, err := watch.Wait(waitCtx, d, func(j *controller.Job) { crashes.report(ctx, j) })
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("release %s of %s is still deploying after %s (status %s); see `flynn ps` and `flynn log`", version, app.Name, c.Duration("timeout"), d.Status)
	}
	if err != nil {
		return err
	}
	if d.Status == controller.DeploymentFailed {
		stays := "no release"
		if d.OldReleaseID != "" {
			stays = "its previous release"
			if old, err := api.Release(ctx, d.OldReleaseID); err == nil {
				stays = controller.ReleaseVersion(old.Version)
			}
		}
		return fmt.Errorf("deploy of release %s failed: %s; %s stays at %s", version, d.Error, app.Name, stays)
	}
	fmt.Fprintf(r.env.Stdout, "Deployed release %s of %s in %s.\n", version, app.Name, r.env.Now().Sub(start).Round(100*time.Millisecond))
	return nil
}
