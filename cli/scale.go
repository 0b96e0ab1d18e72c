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

	events, stop, err := watchJobs(c, api, app)
	if err != nil {
		return err
	}
	defer stop()
	wait := events != nil
	start := r.env.Now()
	if err := api.PutFormation(c.Context, &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: merged}); err != nil {
		return err
	}
	if !wait {
		fmt.Fprintf(r.env.Stdout, "Scaled %s to %s.\n", app.Name, processCounts(merged))
		return nil
	}
	fmt.Fprintf(r.env.Stdout, "Scaling %s to %s…\n", app.Name, processCounts(merged))
	if err := r.waitForJobs(c.Context, api, events, app, rel.ID, merged, nil, c.Duration("timeout")); err != nil {
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
func (r *runner) waitForJobs(ctx context.Context, api *client.Client, events <-chan *controller.Event, app *controller.App, releaseID string, want map[string]int, gone map[string]bool, timeout time.Duration) error {
	jobs := map[string]*controller.Job{}
	list, err := api.Jobs(ctx, app.ID)
	if err != nil {
		return err
	}
	for _, j := range list {
		jobs[j.ID] = j
	}
	// needed is how many new jobs of each type the change asks for.
	needed := upCounts(jobs, releaseID, want, gone)
	for t, n := range needed {
		needed[t] = max(want[t]-n, 0)
	}
	crashes := newCrashReporter(api, app, r.env.Stdout)
	for _, j := range jobs {
		if crashed(j) {
			crashes.seen[j.ID] = true // crashed before this change: not its doing
		}
	}
	crashCount := map[string]int{}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	last := ""
	for {
		up := upCounts(jobs, releaseID, want, gone)
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
		case e, ok := <-events:
			if !ok {
				return ctx.Err()
			}
			var j controller.Job
			if err := json.Unmarshal(e.Data, &j); err != nil {
				return fmt.Errorf("job event %d: %w", e.ID, err)
			}
			jobs[j.ID] = &j
			if _, wanted := want[j.Type]; wanted && j.ReleaseID == releaseID && !gone[j.ID] && crashes.report(ctx, &j) {
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

// watchJobs streams the app's job events for a command that changes its
// jobs and then waits for them, unless --no-wait (events is then nil).
// Opened before the change, the stream misses no update. stop ends it and
// waits for its goroutine.
func watchJobs(c *urfave.Context, api *client.Client, app *controller.App) (events <-chan *controller.Event, stop func(), err error) {
	if c.Bool("no-wait") {
		return nil, func() {}, nil
	}
	ctx, cancel := context.WithCancel(c.Context)
	events, err = api.StreamEvents(ctx, controller.EventFilter{AppID: app.ID, ObjectTypes: []string{controller.ObjectTypeJob}})
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return events, func() {
		cancel()
		for range events { // wait for the stream's goroutine to end
		}
	}, nil
}
