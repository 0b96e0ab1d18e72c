package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func (r *runner) scaleCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "scale",
		Usage:     "show or change how many processes of each type run",
		ArgsUsage: "[TYPE=N…]",
		Description: `Without arguments, prints the current formation. With TYPE=N arguments,
changes those counts (others stay as they are) and waits until the jobs are
up, printing progress, unless --no-wait.

Example:
   flynn scale web=3 worker=1`,
		Flags: append([]urfave.Flag{
			appFlag(),
			jsonFlag(),
			&urfave.BoolFlag{Name: "no-wait", Aliases: []string{"n"}, Usage: "return once the formation is saved"},
			&urfave.DurationFlag{Name: "timeout", Aliases: []string{"t"}, Value: 3 * time.Minute, Usage: "how long to wait for the jobs"},
		}, systemFlags()...),
		Action: r.scale,
	}
}

// parseCounts reads TYPE=N arguments.
func parseCounts(args []string) (map[string]int, error) {
	counts := make(map[string]int, len(args))
	for _, a := range args {
		typ, n, ok := strings.Cut(a, "=")
		count, err := strconv.Atoi(n)
		if !ok || typ == "" || err != nil || count < 0 {
			return nil, fmt.Errorf("%q is not TYPE=N with N a count", a)
		}
		counts[typ] = count
	}
	return counts, nil
}

func (r *runner) scale(c *urfave.Context) error {
	want, err := parseCounts(c.Args().Slice())
	if err != nil {
		return usageError(c, "%v", err)
	}
	api, app, err := r.app(c)
	if err != nil {
		return err
	}
	if app.ReleaseID == "" {
		return errNoRelease
	}
	rel, err := api.Release(c.Context, app.ReleaseID)
	if err != nil {
		return err
	}
	current := map[string]int{}
	f, err := api.Formation(c.Context, app.ID, rel.ID)
	switch {
	case err == nil:
		maps.Copy(current, f.Processes)
	case !httpjson.IsNotFound(err):
		return err
	}
	// Every process type of the release, with its count (0 when unset).
	for t := range rel.Processes {
		if _, ok := current[t]; !ok {
			current[t] = 0
		}
	}
	if len(want) == 0 {
		if lookupBool(c, "json") {
			return writeJSON(r.env.Stdout, current)
		}
		fmt.Fprintln(r.env.Stdout, processCounts(current))
		return nil
	}
	if err := refuseSystem(c, app); err != nil {
		return err
	}
	for t := range want {
		if _, ok := rel.Processes[t]; !ok {
			return fmt.Errorf("release %s has no process type %q (it has: %s)", controller.ReleaseVersion(rel.Version), t, strings.Join(slices.Sorted(maps.Keys(rel.Processes)), ", "))
		}
	}
	merged := maps.Clone(current)
	maps.Copy(merged, want)

	w, err := r.watchJobs(c, api, app)
	if err != nil {
		return err
	}
	defer w.stop()
	wait := w.events != nil
	start := r.env.Now()
	if err := api.PutFormation(c.Context, &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: merged}); err != nil {
		return err
	}
	if !wait {
		fmt.Fprintf(r.env.Stdout, "Scaled %s to %s.\n", app.Name, processCounts(merged))
		return nil
	}
	fmt.Fprintf(r.env.Stdout, "Scaling %s to %s…\n", app.Name, processCounts(merged))
	if err := r.waitForJobs(c.Context, w, rel.ID, merged, nil, c.Duration("timeout")); err != nil {
		return err
	}
	fmt.Fprintf(r.env.Stdout, "Scaled %s to %s in %s.\n", app.Name, processCounts(merged), r.env.Now().Sub(start).Round(100*time.Millisecond))
	return nil
}

// waitForJobs waits until exactly want[type] jobs of each type of the
// release are up, printing each change of the counts. A job that crashes
// is reported at once, with its exit status and last lines; once every
// job a type needed has crashed (counting the scheduler's restarts), the
// wait ends with an error instead of running into the timeout. Jobs in
// gone (stopped by the caller: `flynn restart`) count as not up and not
// crashed, whatever their state says until their host reports them down.
func (r *runner) waitForJobs(ctx context.Context, w *jobWatch, releaseID string, want map[string]int, gone map[string]bool, timeout time.Duration) error {
	// needed is how many new jobs of each type the change asks for.
	needed := upCounts(w.jobs, releaseID, want, gone)
	for t, n := range needed {
		needed[t] = max(want[t]-n, 0)
	}
	crashCount := map[string]int{}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	last := ""
	for {
		up := upCounts(w.jobs, releaseID, want, gone)
		if maps.Equal(up, want) {
			return nil
		}
		if progress := progressLine(up, want); progress != last {
			fmt.Fprintf(r.env.Stdout, "  %s\n", progress)
			last = progress
		}
		for _, t := range slices.Sorted(maps.Keys(want)) {
			if needed[t] > 0 && crashCount[t] >= needed[t] && up[t] < want[t] {
				return fmt.Errorf("%s is crashing: %d of %d new jobs exited before they were up (see `flynn log -t %s`); the formation stays at %s and the scheduler keeps restarting %s, ever more slowly, until it is fixed or scaled down",
					t, crashCount[t], needed[t], t, processCounts(want), t)
			}
		}
		select {
		case e, ok := <-w.events:
			if !ok {
				return ctx.Err()
			}
			j, err := w.apply(e)
			if err != nil {
				return err
			}
			if _, wanted := want[j.Type]; wanted && j.ReleaseID == releaseID && !gone[j.ID] && w.crashes.report(ctx, j) {
				crashCount[j.Type]++
			}
		case <-timer.C:
			return fmt.Errorf("timed out after %s waiting for %s (up: %s); see `flynn ps` and `flynn log`",
				timeout, processCounts(want), processCounts(up))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// upCounts counts the jobs of the release that are up, per wanted type,
// but those in gone.
func upCounts(jobs map[string]*controller.Job, releaseID string, want map[string]int, gone map[string]bool) map[string]int {
	up := make(map[string]int, len(want))
	for t := range want {
		up[t] = 0
	}
	for _, j := range jobs {
		if _, ok := want[j.Type]; ok && j.ReleaseID == releaseID && j.State == controller.JobStateUp && !gone[j.ID] {
			up[j.Type]++
		}
	}
	return up
}

// progressLine is "web 1/3, worker 0/1".
func progressLine(up, want map[string]int) string {
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(want)) {
		parts = append(parts, fmt.Sprintf("%s %d/%d", t, up[t], want[t]))
	}
	return strings.Join(parts, ", ") + " up"
}

// jobWatch is a command's view of an app's jobs while it changes them:
// the jobs as they were before the change, kept up to date by the app's
// job events.
type jobWatch struct {
	// events is nil with --no-wait: nothing is watched.
	events <-chan *controller.Event
	jobs   map[string]*controller.Job
	// crashes reports each job's crash once; those before the change are
	// not the change's doing and are never reported.
	crashes *crashReporter
	stop    func()
}

// watchJobs opens the app's job events for a command that changes its
// jobs and then waits for them (unless --no-wait), and lists the jobs.
// Both happen before the change, so that what the change does arrives as
// events: a job that crashes at once, before a listing made after the
// change could see it start, is still the change's crash. stop ends the
// stream and waits for its goroutine.
func (r *runner) watchJobs(c *urfave.Context, api *client.Client, app *controller.App) (*jobWatch, error) {
	if c.Bool("no-wait") {
		return &jobWatch{stop: func() {}}, nil
	}
	ctx, cancel := context.WithCancel(c.Context)
	events, err := api.StreamEvents(ctx, controller.EventFilter{AppID: app.ID, ObjectTypes: []string{controller.ObjectTypeJob}})
	if err != nil {
		cancel()
		return nil, err
	}
	w := &jobWatch{
		events:  events,
		jobs:    map[string]*controller.Job{},
		crashes: newCrashReporter(api, app, r.env.Stdout),
		stop: func() {
			cancel()
			for range events { // wait for the stream's goroutine to end
			}
		},
	}
	list, err := api.Jobs(c.Context, app.ID)
	if err != nil {
		w.stop()
		return nil, err
	}
	for _, j := range list {
		w.jobs[j.ID] = j
		if crashed(j) {
			w.crashes.seen[j.ID] = true
		}
	}
	return w, nil
}

// apply takes a job event into the view. An event from before the
// listing (the stream opened first) older than what the listing showed
// is passed over.
func (w *jobWatch) apply(e *controller.Event) (*controller.Job, error) {
	var j controller.Job
	if err := json.Unmarshal(e.Data, &j); err != nil {
		return nil, fmt.Errorf("job event %d: %w", e.ID, err)
	}
	if known, ok := w.jobs[j.ID]; ok && j.UpdatedAt.Before(known.UpdatedAt) {
		return known, nil
	}
	w.jobs[j.ID] = &j
	return &j, nil
}
