package cli

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func (r *runner) restartCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "restart",
		Usage:     "restart an app's jobs, one at a time, without a new release",
		ArgsUsage: "[TYPE]",
		Description: `Restarts the app's running jobs (of process type TYPE alone when given)
with no new release, as Heroku's restart does; unlike it, one job at a
time: it stops a job, waits until the scheduler's replacement is up, then
goes on to the next, so the app keeps serving. A replacement that crashes
stops the restart, reporting the crash; the jobs not yet restarted keep
running. --timeout bounds the wait for each replacement; --no-wait stops
every job at once and leaves the replacing to the scheduler. One-off jobs
(flynn run) are left alone.

Example:
   flynn -a example restart
   flynn -a example restart web --timeout 5m`,
		Flags: append([]urfave.Flag{
			appFlag(),
			&urfave.BoolFlag{Name: "no-wait", Aliases: []string{"n"}, Usage: "stop every job at once, without waiting for their replacements"},
			&urfave.DurationFlag{Name: "timeout", Aliases: []string{"t"}, Value: 3 * time.Minute, Usage: "how long to wait for each replacement job"},
		}, systemFlags()...),
		Action: r.restart,
	}
}

func (r *runner) restart(c *urfave.Context) error {
	if c.NArg() > 1 {
		return usageError(c, "want at most one TYPE")
	}
	typ := c.Args().First()
	api, app, err := r.changeApp(c)
	if err != nil {
		return err
	}
	var (
		rel  *controller.Release
		want = map[string]int{}
	)
	if app.ReleaseID != "" {
		if rel, err = api.Release(c.Context, app.ReleaseID); err != nil {
			return err
		}
		f, err := api.Formation(c.Context, app.ID, rel.ID)
		switch {
		case err == nil:
			want = f.Processes
		case !httpjson.IsNotFound(err):
			return err
		}
	}
	if typ != "" && (rel == nil || !hasProcessType(rel, typ)) {
		types := "none"
		if rel != nil && len(rel.Processes) > 0 {
			types = strings.Join(slices.Sorted(maps.Keys(rel.Processes)), ", ")
		}
		return fmt.Errorf("%s has no process type %q (it has: %s)", app.Name, typ, types)
	}
	active, err := api.ActiveJobs(c.Context, app.ID)
	if err != nil {
		return err
	}
	// The jobs the scheduler replaces: up, of the current release, of a
	// type its formation wants. A one-off job would not come back, and one
	// of another release is on its way out.
	var jobs []*controller.Job
	for _, j := range active {
		if j.State == controller.JobStateUp && j.ReleaseID == app.ReleaseID && want[j.Type] > 0 && (typ == "" || j.Type == typ) {
			jobs = append(jobs, j)
		}
	}
	if len(jobs) == 0 {
		what := "jobs"
		if typ != "" {
			what = typ + " jobs"
		}
		fmt.Fprintf(r.env.Stdout, "%s has no running %s; nothing to restart.\n", app.Name, what)
		return nil
	}
	slices.SortStableFunc(jobs, func(a, b *controller.Job) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), a.CreatedAt.Compare(b.CreatedAt))
	})

	w, err := r.watchJobs(c, api, app)
	if err != nil {
		return err
	}
	defer w.stop()
	wait := w.events != nil
	start := r.env.Now()
	fmt.Fprintf(r.env.Stdout, "Restarting %s of %s…\n", jobCount(len(jobs)), app.Name)
	gone := map[string]bool{}
	for i, j := range jobs {
		if err := api.StopJob(c.Context, app.ID, j.ID); err != nil {
			return fmt.Errorf("restart of %s stopped after %d of %s: stop %s: %w", app.Name, i, jobCount(len(jobs)), jobLabel(j), err)
		}
		gone[j.ID] = true
		fmt.Fprintf(r.env.Stdout, "  Stopped %s (%d/%d)\n", jobLabel(j), i+1, len(jobs))
		if !wait {
			continue
		}
		if err := r.waitForJobs(c.Context, w, app.ReleaseID, map[string]int{j.Type: want[j.Type]}, gone, c.Duration("timeout")); err != nil {
			return fmt.Errorf("restart of %s stopped after %d of %s: %w", app.Name, i+1, jobCount(len(jobs)), err)
		}
	}
	if !wait {
		fmt.Fprintf(r.env.Stdout, "Stopped %s of %s; the scheduler replaces them.\n", jobCount(len(jobs)), app.Name)
		return nil
	}
	fmt.Fprintf(r.env.Stdout, "Restarted %s: %s in %s.\n", app.Name, jobCount(len(jobs)), r.env.Now().Sub(start).Round(100*time.Millisecond))
	return nil
}

// hasProcessType reports whether rel has process type typ.
func hasProcessType(rel *controller.Release, typ string) bool {
	_, ok := rel.Processes[typ]
	return ok
}

// jobCount is "1 job", "3 jobs".
func jobCount(n int) string {
	if n == 1 {
		return "1 job"
	}
	return fmt.Sprintf("%d jobs", n)
}
