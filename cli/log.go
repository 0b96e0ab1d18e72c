package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func (r *runner) logCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "log",
		Usage: "show an app's output",
		Description: `Shows the output of one job (-j), printed as the job wrote it, or of the
app's jobs (of one process type with -t), each line with its time and job.
-f follows the output as it is written (of the jobs running when it starts).

Example:
   flynn -a example log -f -t web`,
		Flags: []urfave.Flag{
			appFlag(),
			&urfave.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new output"},
			&urfave.StringFlag{Name: "type", Aliases: []string{"t"}, Usage: "only jobs of this process `TYPE`"},
			&urfave.StringFlag{Name: "job", Aliases: []string{"j"}, Usage: "only this `JOB`"},
			&urfave.IntFlag{Name: "lines", Aliases: []string{"n"}, Usage: "only the last `N` lines in all (0: all)"},
		},
		Action: r.log,
	}
}

// jobLabel names a job in merged output: "web.1b4e28ba" (type and the
// start of the job's UUID), "run.…" for one-off jobs.
func jobLabel(j *controller.Job) string {
	typ := j.Type
	if typ == "" {
		typ = "run"
	}
	id := j.ID
	if len(id) >= 36 { // "<hostID>-<uuid>": keep the UUID's start
		id = id[len(id)-36:]
	}
	if len(id) > 8 {
		id = id[:8]
	}
	return typ + "." + id
}

// labelledLine is a log line and the job it came from.
type labelledLine struct {
	job string
	host.LogLine
}

func (r *runner) log(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "takes no arguments")
	}
	name, err := r.appName(c)
	if err != nil {
		return err
	}
	api, err := r.connect(c)
	if err != nil {
		return err
	}
	follow := c.Bool("follow")
	query := client.JobLogOptions{Follow: follow, Tail: max(c.Int("lines"), 0)}
	if id := c.String("job"); id != "" {
		// One job: its output as it wrote it, stderr to stderr.
		return r.streamLog(c.Context, name, id, query, func(l host.LogLine) {
			w := r.env.Stdout
			if l.Stream == host.StreamStderr {
				w = r.env.Stderr
			}
			io.WriteString(w, l.Data)
		})
	}
	jobs, err := api.Jobs(c.Context, name)
	if err != nil {
		return err
	}
	app, err := api.App(c.Context, name)
	if err != nil {
		return err
	}
	var selected []*controller.Job
	for _, j := range jobs {
		if t := c.String("type"); t != "" && j.Type != t {
			continue
		}
		// Following, only running jobs write; otherwise the current
		// release's jobs (and any still running) have output to show.
		if follow && jobEnded(j) || !follow && j.ReleaseID != app.ReleaseID && jobEnded(j) {
			continue
		}
		selected = append(selected, j)
	}
	if len(selected) == 0 {
		return errors.New("no jobs to show the output of (see `flynn ps --all`)")
	}
	history, err := r.mergedLogs(c.Context, name, selected, query)
	if err != nil {
		return err
	}
	for _, l := range history {
		writeLabelled(r.env.Stdout, l)
	}
	if !follow {
		return nil
	}
	// Following goes on after the history just printed: each job's stream
	// repeats its tail, which is skipped up to the last line printed (of
	// that job, and of the history as a whole when -n cut it).
	skip := skipPrinted(history, query.Tail > 0)
	return r.followLogs(c.Context, name, selected, query, skip)
}

// mergedLogs returns the output of jobs in time order: the last
// query.Tail lines in all when Tail is set.
func (r *runner) mergedLogs(ctx context.Context, app string, jobs []*controller.Job, query client.JobLogOptions) ([]labelledLine, error) {
	query.Follow = false
	var lines []labelledLine
	for _, j := range jobs {
		label := jobLabel(j)
		err := r.streamLog(ctx, app, j.ID, query, func(l host.LogLine) {
			lines = append(lines, labelledLine{label, l})
		})
		if httpjson.IsNotFound(err) {
			continue // its host no longer keeps it
		}
		if err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(lines, func(a, b labelledLine) int { return a.Time.Compare(b.Time) })
	if query.Tail > 0 && len(lines) > query.Tail {
		lines = lines[len(lines)-query.Tail:]
	}
	return lines, nil
}

// skipPrinted returns the test that drops, from a followed stream, the
// lines of history already printed: a job's lines up to its last one
// printed, and with cut (history was the last N lines in all) every line
// older than the history's first.
func skipPrinted(history []labelledLine, cut bool) func(labelledLine) bool {
	last := map[string]time.Time{}
	for _, l := range history {
		last[l.job] = l.Time
	}
	var cutoff time.Time
	if cut && len(history) > 0 {
		cutoff = history[0].Time
	}
	return func(l labelledLine) bool {
		if l.Time.Before(cutoff) {
			return true
		}
		t, ok := last[l.job]
		return ok && !l.Time.After(t)
	}
}

// followLogs prints the output of jobs as they write it, leaving out the
// lines skip says were printed, until every stream ends or ctx does.
func (r *runner) followLogs(ctx context.Context, app string, jobs []*controller.Job, query client.JobLogOptions, skip func(labelledLine) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lines := make(chan labelledLine)
	errs := make(chan error, len(jobs))
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			label := jobLabel(j)
			err := r.streamLog(ctx, app, j.ID, query, func(l host.LogLine) {
				select {
				case lines <- labelledLine{label, l}:
				case <-ctx.Done():
				}
			})
			if err != nil && !httpjson.IsNotFound(err) && ctx.Err() == nil {
				errs <- fmt.Errorf("job %s: %w", j.ID, err)
			}
		}()
	}
	go func() {
		wg.Wait()
		close(lines)
	}()
	for l := range lines {
		if !skip(l) {
			writeLabelled(r.env.Stdout, l)
		}
	}
	// The goroutines are done: lines closes after wg.Wait.
	select {
	case err := <-errs:
		return err
	default:
		return ctx.Err()
	}
}

func writeLabelled(w io.Writer, l labelledLine) {
	data := l.Data
	if !strings.HasSuffix(data, "\n") {
		data += "\n"
	}
	fmt.Fprintf(w, "%s %s: %s", l.Time.UTC().Format(time.RFC3339Nano), l.job, data)
}

// streamLog reads a job's log through the controller, calling fn for each
// line, until the stream ends.
func (r *runner) streamLog(ctx context.Context, app, job string, opts client.JobLogOptions, fn func(host.LogLine)) error {
	stream, err := r.api.JobLog(ctx, app, job, opts)
	if err != nil {
		return err
	}
	defer stream.Close()
	for {
		l, err := stream.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("job %s log: %w", job, err)
		}
		fn(l)
	}
}
