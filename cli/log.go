package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/logaggregator"
)

// defaultLogLines is how many lines `flynn log` prints unless told, as
// Heroku's `logs` does.
const defaultLogLines = 100

func (r *runner) logCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "log",
		Usage: "show an app's output",
		Description: `Shows the app's last lines as the cluster's log aggregator keeps them:
every job's output, of jobs still running and of those gone, and the
router's line for each request, in the order they came, each with its time
and source ("web.1b4e28ba": process type and job; "router"). -f goes on
printing lines as they come, of jobs that start later too (a scale-up, a
deploy). With -j, one job's output is printed as the job wrote it, stderr
to stderr.

Example:
   flynn -a example log -f -t web
   flynn -a example log --since 10m -n 0`,
		Flags: []urfave.Flag{
			appFlag(),
			&urfave.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines"},
			&urfave.StringFlag{Name: "process-type", Aliases: []string{"t", "type"}, Usage: "only lines of this process `TYPE` (\"router\": the router's)"},
			&urfave.StringFlag{Name: "job", Aliases: []string{"j"}, Usage: "only this `JOB`'s output, as it wrote it"},
			&urfave.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: defaultLogLines, Usage: "the last `N` lines (0: every line kept)"},
			&urfave.StringFlag{Name: "since", Usage: "only lines since `WHEN`: a duration ago (10m, 2h) or a time (2026-12-01T10:00:00Z)"},
		},
		Action:      r.log,
		Subcommands: r.drainCommands(), // drain.go
	}
}

// parseSince reads --since: a duration before now, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (10m) or an RFC 3339 time (2026-12-01T10:00:00Z)", s)
}

func (r *runner) log(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "takes no arguments")
	}
	name, err := r.appName(c)
	if err != nil {
		return err
	}
	if _, err := r.connect(c); err != nil {
		return err
	}
	if c.Int("lines") < 0 {
		return usageError(c, "--lines must be 0 or more")
	}
	opts := logaggregator.ReadOptions{
		Lines:       c.Int("lines"),
		Follow:      c.Bool("follow"),
		ProcessType: c.String("process-type"),
		JobID:       c.String("job"),
	}
	if s := c.String("since"); s != "" {
		if opts.Since, err = parseSince(s, r.env.Now()); err != nil {
			return usageError(c, "%v", err)
		}
	}
	print := func(l *logaggregator.Line) {
		writeLogLine(r.env.Stdout, l)
	}
	if opts.JobID != "" {
		// One job: its output as it wrote it, stderr to stderr.
		print = func(l *logaggregator.Line) {
			w := r.env.Stdout
			if l.Stream == logaggregator.StreamStderr {
				w = r.env.Stderr
			}
			io.WriteString(w, l.Data)
		}
	}
	for {
		last, err := r.readLog(c.Context, name, opts, print)
		if err == nil || !opts.Follow || c.Context.Err() != nil {
			return err
		}
		// A follow that broke (the controller or the aggregator was
		// redeployed) resumes after the last line printed.
		fmt.Fprintf(r.env.Stderr, "flynn: log stream broke (%v); resuming\n", err)
		if last > 0 {
			opts.After, opts.Lines = last, 0
		}
		select {
		case <-c.Context.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// readLog prints the lines of app selected by opts until the stream ends
// (at once without Follow) and returns the Seq of the last line printed.
func (r *runner) readLog(ctx context.Context, app string, opts logaggregator.ReadOptions, print func(*logaggregator.Line)) (uint64, error) {
	stream, err := r.api.AppLog(ctx, app, opts)
	if err != nil {
		return opts.After, err
	}
	defer stream.Close()
	last := opts.After
	for {
		l, err := stream.Next()
		if errors.Is(err, io.EOF) {
			if opts.Follow && ctx.Err() == nil {
				return last, errors.New("the stream ended")
			}
			return last, nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return last, nil
			}
			return last, err
		}
		print(&l)
		last = l.Seq
	}
}

// logSource names a line's source in merged output: its job's label, or
// "router" for the router's request lines (and the process type alone for
// other lines of no job: the aggregator's own about a drain).
func logSource(l *logaggregator.Line) string {
	if l.ProcessType == logaggregator.ProcessTypeRouter || l.JobID == "" && l.ProcessType != "" {
		return l.ProcessType
	}
	return label(l.ProcessType, l.JobID)
}

// jobLabel names a job in merged output (see label).
func jobLabel(j *controller.Job) string { return label(j.Type, j.ID) }

// label is "web.1b4e28ba": a job's process type ("run" for a one-off
// job) and the start of its UUID.
func label(typ, jobID string) string {
	if typ == "" {
		typ = "run"
	}
	id := jobID
	if len(id) >= 36 { // "<hostID>-<uuid>": keep the UUID's start
		id = id[len(id)-36:]
	}
	if len(id) > 8 {
		id = id[:8]
	}
	return typ + "." + id
}

// writeLogLine prints "<time> <source>: <line>".
func writeLogLine(w io.Writer, l *logaggregator.Line) {
	data := l.Data
	if !strings.HasSuffix(data, "\n") {
		data += "\n"
	}
	fmt.Fprintf(w, "%s %s: %s", l.Time.UTC().Format(time.RFC3339Nano), logSource(l), data)
}
