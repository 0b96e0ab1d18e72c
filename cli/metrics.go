package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
)

// The bounds of `flynn metrics --interval`: the routers' counts are
// totals, so a rate needs two readings some time apart.
const (
	defaultMetricsInterval = 5 * time.Second
	minMetricsInterval     = time.Second
)

func (r *runner) metricsCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "metrics",
		Usage: "show an app's request rate, errors and latency",
		Description: `Reads what the cluster's routers count of the app's HTTP requests twice,
--interval apart, and shows what happened between: requests per second,
the share answered with a 5xx status, the requests whose client went away
before the answer (499; not errors), and the p50 and p99 latency, from a
request's arrival at the router to the end of its answer. The latencies
are estimated from the routers' histogram buckets as Prometheus's
histogram_quantile does; "< 1ms" or "> 30s" when they fall in the first or
past the last bucket, "-" when there were no requests. A router that does
not answer within a few seconds is left out and counted apart. -f goes on
showing a block every interval until interrupted; with --json, one object
a line.

Example:
   flynn -a example metrics
   flynn -a example metrics -f --interval 10s`,
		Flags: []urfave.Flag{
			appFlag(),
			jsonFlag(),
			&urfave.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep showing a block every interval"},
			&urfave.DurationFlag{Name: "interval", Aliases: []string{"i"}, Value: defaultMetricsInterval, Usage: "time between the readings (at least 1s)"},
		},
		Action: r.metrics,
	}
}

func (r *runner) metrics(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "takes no arguments")
	}
	interval := c.Duration("interval")
	if interval < minMetricsInterval {
		return usageError(c, "--interval must be at least %s", minMetricsInterval)
	}
	name, api, err := r.appAPI(c)
	if err != nil {
		return err
	}
	follow, asJSON := c.Bool("follow"), lookupBool(c, "json")
	ctx := c.Context
	prev, err := api.AppMetrics(ctx, name)
	if err != nil {
		return err
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	shown := 0 // blocks shown
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cur, err := api.AppMetrics(ctx, name)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !follow:
			return err
		case err != nil:
			// The controller may be redeploying: the next reading
			// starts afresh.
			fmt.Fprintf(r.env.Stderr, "flynn: %s; trying again\n", errorLine(err))
			prev = nil
			continue
		case prev == nil:
			prev = cur
			continue
		}
		w, err := controller.MetricsBetween(prev, cur, interval)
		prev = cur
		switch {
		case err != nil && !follow:
			return fmt.Errorf("%w; try again", err)
		case err != nil:
			fmt.Fprintf(r.env.Stderr, "flynn: %v; this interval is skipped\n", err)
			continue
		case asJSON && follow:
			// One object a line, for a reader that takes them as they come.
			if err := json.NewEncoder(r.env.Stdout).Encode(w); err != nil {
				return err
			}
		case asJSON:
			return writeJSON(r.env.Stdout, w)
		default:
			if shown > 0 {
				fmt.Fprintln(r.env.Stdout)
			}
			if err := renderMetrics(r.env.Stdout, name, w); err != nil {
				return err
			}
		}
		shown++
		if !follow {
			return nil
		}
	}
}

// formatLatency writes a latency estimate for people: "12ms", "< 1ms",
// "> 30s", "-".
func formatLatency(l controller.Latency) string {
	switch {
	case math.IsNaN(l.Seconds):
		return "-"
	case l.Below:
		// The interpolation from 0 is a guess; the bound is not.
		return "< " + formatSeconds(l.Bound)
	case l.Above:
		return "> " + formatSeconds(l.Bound)
	}
	return formatSeconds(l.Seconds)
}

// formatSeconds writes a duration in seconds with two or three
// significant digits: "0.25ms", "2.5ms", "480ms", "1.2s", "30s".
func formatSeconds(s float64) string {
	format := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	switch ms := s * 1000; {
	case ms <= 0:
		return "0ms"
	case ms < 9.95:
		// Two significant digits.
		p := math.Pow(10, 1-math.Floor(math.Log10(ms)))
		return format(math.Round(ms*p)/p) + "ms"
	case ms < 999.5:
		return format(math.Round(ms)) + "ms"
	default:
		return format(math.Round(s*10)/10) + "s"
	}
}

// renderMetrics writes one block of `flynn metrics`.
func renderMetrics(w io.Writer, app string, m *controller.MetricsWindow) error {
	over := time.Duration(m.IntervalSeconds * float64(time.Second)).Round(100 * time.Millisecond)
	t := newFields(w, app+": the last "+over.String())
	t.row("Requests:", fmt.Sprintf("%.1f/s (%s)", m.RequestsPerSecond, formatCount(m.Requests)))
	errs := "-"
	if m.ErrorPercent != nil {
		errs = fmt.Sprintf("%.1f%% answered 5xx (%s)", *m.ErrorPercent, formatCount(m.Errors))
	}
	t.row("Errors:", errs)
	t.row("Client gone:", formatCount(m.ClientGone)+" (499: went away before the answer)")
	lat := "-"
	if m.P50 != nil {
		lat = "p50 " + formatLatency(m.P50Estimate) + ", p99 " + formatLatency(m.P99Estimate)
	}
	t.row("Latency:", lat)
	routers := fmt.Sprintf("%d of %d answered", m.Routers, m.Routers+m.RoutersFailed)
	if m.RoutersFailed > 0 {
		routers += " (the others' requests are not counted)"
	}
	t.row("Routers:", routers)
	return t.flush()
}

// formatCount writes a count of requests: whole, as the routers count.
func formatCount(n float64) string { return strconv.FormatFloat(math.Round(n), 'f', -1, 64) }
