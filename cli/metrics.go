package cli

import (
	"encoding/json"
	"errors"
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
		w, err := metricsBetween(prev, cur, interval)
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

// metricsWindow is what the routers counted of an app's requests between
// two readings: `flynn metrics`'s block, and its JSON.
type metricsWindow struct {
	// Time is when the second reading was taken.
	Time time.Time `json:"time"`
	// Seconds is the time between the readings, by the controller's clock.
	Seconds           float64 `json:"interval_seconds"`
	Requests          float64 `json:"requests"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	// ByStatus is the requests by status class (see
	// controller.AppMetrics.ByStatus).
	ByStatus map[string]float64 `json:"by_status"`
	// Errors are the requests answered 5xx; ErrorPercent their share of
	// Requests, nil without requests.
	Errors       float64  `json:"errors"`
	ErrorPercent *float64 `json:"error_percent"`
	// ClientGone are the requests whose client went away first (499).
	ClientGone float64 `json:"client_gone"`
	// P50 and P99 are latencies in seconds, nil without requests. JSON
	// has the estimate Prometheus's histogram_quantile makes, without the
	// text's "<" and ">": the first bucket's is interpolated from 0, and
	// past the last bound is that bound.
	P50 *float64 `json:"p50_seconds"`
	P99 *float64 `json:"p99_seconds"`
	// p50 and p99 say where the estimates fell, for the text.
	p50, p99 latency
	// Routers answered the second reading; RoutersFailed did not.
	Routers       int `json:"routers"`
	RoutersFailed int `json:"routers_failed"`
}

// errRouterRestarted is a reading whose totals went down: a router
// restarted between the readings and started again from zero, so the
// differences say nothing.
var errRouterRestarted = errors.New("a router restarted between the readings")

// metricsBetween is what happened between readings a and b; interval is
// the time between them when the readings' clock does not tell.
func metricsBetween(a, b *controller.AppMetrics, interval time.Duration) (*metricsWindow, error) {
	if a.Routers != b.Routers || a.RoutersFailed != b.RoutersFailed {
		// A router that answered only one of the readings would make its
		// whole totals look like the interval's requests.
		return nil, fmt.Errorf("the routers that answered changed (%d of %d, then %d of %d)", a.Routers, a.Routers+a.RoutersFailed, b.Routers, b.Routers+b.RoutersFailed)
	}
	w := &metricsWindow{Time: b.Time, Seconds: b.Time.Sub(a.Time).Seconds(), ByStatus: map[string]float64{}, Routers: b.Routers, RoutersFailed: b.RoutersFailed}
	if w.Seconds <= 0 {
		w.Seconds = interval.Seconds()
	}
	down := false
	delta := func(x, y float64) float64 {
		down = down || y < x
		return y - x
	}
	w.Requests = delta(a.Requests, b.Requests)
	for class, n := range b.ByStatus {
		w.ByStatus[class] = delta(a.ByStatus[class], n)
	}
	for class, n := range a.ByStatus {
		if _, ok := b.ByStatus[class]; !ok {
			w.ByStatus[class] = delta(n, 0)
		}
	}
	count := delta(a.DurationCount, b.DurationCount)
	before := make(map[float64]float64, len(a.Duration))
	for _, bk := range a.Duration {
		before[bk.UpperBound] = bk.Count
	}
	var buckets []controller.Bucket
	for _, bk := range b.Duration {
		if n, ok := before[bk.UpperBound]; ok {
			buckets = append(buckets, controller.Bucket{UpperBound: bk.UpperBound, Count: delta(n, bk.Count)})
		}
	}
	if down {
		return nil, errRouterRestarted
	}
	w.RequestsPerSecond = w.Requests / w.Seconds
	w.Errors = w.ByStatus["5xx"]
	w.ClientGone = w.ByStatus[controller.StatusClassClientGone]
	if w.Requests > 0 {
		p := 100 * w.Errors / w.Requests
		w.ErrorPercent = &p
	}
	w.p50, w.p99 = quantile(0.5, buckets, count), quantile(0.99, buckets, count)
	w.P50, w.P99 = w.p50.seconds(), w.p99.seconds()
	return w, nil
}

// latency is an estimate of a quantile of the requests' durations.
type latency struct {
	// value is the estimate in seconds; NaN when there were no requests.
	value float64
	// below: the quantile fell in the first bucket, so all that is known
	// is that it is at most bound, that bucket's. above: it fell past the
	// last bound, so it is more than bound (and value), that bound.
	below, above bool
	bound        float64
}

func (l latency) seconds() *float64 {
	if math.IsNaN(l.value) {
		return nil
	}
	return &l.value
}

// quantile estimates the q-quantile of count observations in cumulative
// buckets (lowest bound first, without +Inf) as Prometheus's
// histogram_quantile does: it finds the bucket the rank q·count falls in
// and interpolates linearly within it, from 0 in the first bucket; past
// the last bound the estimate is that bound.
func quantile(q float64, buckets []controller.Bucket, count float64) latency {
	if count <= 0 || len(buckets) == 0 {
		return latency{value: math.NaN()}
	}
	rank := q * count
	b := 0
	for b < len(buckets) && buckets[b].Count < rank {
		b++
	}
	if b == len(buckets) {
		last := buckets[b-1].UpperBound
		return latency{value: last, above: true, bound: last}
	}
	start, end, inBucket := 0.0, buckets[b].UpperBound, buckets[b].Count
	if b > 0 {
		start = buckets[b-1].UpperBound
		inBucket -= buckets[b-1].Count
		rank -= buckets[b-1].Count
	}
	if b == 0 && end <= 0 {
		return latency{value: end}
	}
	return latency{value: start + (end-start)*rank/inBucket, below: b == 0, bound: end}
}

// String is the estimate for people: "12ms", "< 1ms", "> 30s", "-".
func (l latency) String() string {
	switch {
	case math.IsNaN(l.value):
		return "-"
	case l.below:
		// The interpolation from 0 is a guess; the bound is not.
		return "< " + formatSeconds(l.bound)
	case l.above:
		return "> " + formatSeconds(l.bound)
	}
	return formatSeconds(l.value)
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
func renderMetrics(w io.Writer, app string, m *metricsWindow) error {
	over := time.Duration(m.Seconds * float64(time.Second)).Round(100 * time.Millisecond)
	t := newFields(w, app+": the last "+over.String())
	t.row("Requests:", fmt.Sprintf("%.1f/s (%s)", m.RequestsPerSecond, formatCount(m.Requests)))
	errs := "-"
	if m.ErrorPercent != nil {
		errs = fmt.Sprintf("%.1f%% answered 5xx (%s)", *m.ErrorPercent, formatCount(m.Errors))
	}
	t.row("Errors:", errs)
	t.row("Client gone:", formatCount(m.ClientGone)+" (499: went away before the answer)")
	lat := "-"
	if !math.IsNaN(m.p50.value) {
		lat = "p50 " + m.p50.String() + ", p99 " + m.p99.String()
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
