package controller

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// MetricsWindow is what the routers counted of an app's requests between
// two readings of AppMetrics (see MetricsBetween): rates rather than
// totals. Its JSON is `flynn metrics --json`'s.
type MetricsWindow struct {
	// Time is when the second reading was taken.
	Time time.Time `json:"time"`
	// IntervalSeconds is the time between the readings, by the
	// controller's clock.
	IntervalSeconds   float64 `json:"interval_seconds"`
	Requests          float64 `json:"requests"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	// ByStatus is the requests by status class (see AppMetrics.ByStatus).
	ByStatus map[string]float64 `json:"by_status"`
	// Errors are the requests answered 5xx; ErrorPercent their share of
	// Requests, nil without requests.
	Errors       float64  `json:"errors"`
	ErrorPercent *float64 `json:"error_percent"`
	// ClientGone are the requests whose client went away first
	// (StatusClassClientGone).
	ClientGone float64 `json:"client_gone"`
	// P50 and P99 are latencies in seconds, nil without requests: the
	// estimate Prometheus's histogram_quantile makes, so the first
	// bucket's is interpolated from 0, and past the last bound is that
	// bound. They are P50Estimate.Seconds and P99Estimate.Seconds.
	P50 *float64 `json:"p50_seconds"`
	P99 *float64 `json:"p99_seconds"`
	// P50Estimate and P99Estimate are the same estimates with where they
	// fell, for a reader that shows "< 1ms" rather than a guess. JSON
	// leaves them out to keep the wire shape a plain number.
	P50Estimate Latency `json:"-"`
	P99Estimate Latency `json:"-"`
	// Routers answered the second reading; RoutersFailed did not.
	Routers       int `json:"routers"`
	RoutersFailed int `json:"routers_failed"`
}

// ErrRouterRestarted is what MetricsBetween returns for readings whose
// totals went down: a router restarted between them and started again
// from zero, so the differences say nothing.
var ErrRouterRestarted = errors.New("a router restarted between the readings")

// MetricsBetween is what happened between readings a and b, b the later;
// interval is the time between them when the readings' own clock does not
// tell (the same Time twice). An error means the interval says nothing and
// the next pair of readings will: ErrRouterRestarted, or a change in which
// routers answered, since a router in only one reading would make its
// whole totals look like the interval's requests.
func MetricsBetween(a, b *AppMetrics, interval time.Duration) (*MetricsWindow, error) {
	if a.Routers != b.Routers || a.RoutersFailed != b.RoutersFailed {
		return nil, fmt.Errorf("the routers that answered changed (%d of %d, then %d of %d)", a.Routers, a.Routers+a.RoutersFailed, b.Routers, b.Routers+b.RoutersFailed)
	}
	w := &MetricsWindow{Time: b.Time, IntervalSeconds: b.Time.Sub(a.Time).Seconds(), ByStatus: map[string]float64{}, Routers: b.Routers, RoutersFailed: b.RoutersFailed}
	if w.IntervalSeconds <= 0 {
		w.IntervalSeconds = interval.Seconds()
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
	// A bound only one reading has cannot be differenced: it is left out.
	before := make(map[float64]float64, len(a.Duration))
	for _, bk := range a.Duration {
		before[bk.UpperBound] = bk.Count
	}
	var buckets []Bucket
	for _, bk := range b.Duration {
		if n, ok := before[bk.UpperBound]; ok {
			buckets = append(buckets, Bucket{UpperBound: bk.UpperBound, Count: delta(n, bk.Count)})
		}
	}
	if down {
		return nil, ErrRouterRestarted
	}
	w.RequestsPerSecond = w.Requests / w.IntervalSeconds
	w.Errors = w.ByStatus["5xx"]
	w.ClientGone = w.ByStatus[StatusClassClientGone]
	if w.Requests > 0 {
		p := 100 * w.Errors / w.Requests
		w.ErrorPercent = &p
	}
	w.P50Estimate, w.P99Estimate = quantile(0.5, buckets, count), quantile(0.99, buckets, count)
	w.P50, w.P99 = w.P50Estimate.seconds(), w.P99Estimate.seconds()
	return w, nil
}

// Latency is an estimate of a quantile of requests' durations.
type Latency struct {
	// Seconds is the estimate; NaN when there were no requests.
	Seconds float64
	// Below: the quantile fell in the first bucket, so all that is known
	// is that it is at most Bound, that bucket's upper bound (Seconds is
	// interpolated from 0, a guess). Above: it fell past the last bound,
	// so it is more than Bound, that bound, which Seconds then is.
	Below, Above bool
	// Bound is the upper bound of the bucket the quantile fell in, or
	// the last bound when Above.
	Bound float64
}

// seconds is l.Seconds for JSON: nil when there is no estimate.
func (l Latency) seconds() *float64 {
	if math.IsNaN(l.Seconds) {
		return nil
	}
	return &l.Seconds
}

// quantile estimates the q-quantile of count observations in cumulative
// buckets (lowest bound first, without +Inf) as Prometheus's
// histogram_quantile does: it finds the bucket the rank q·count falls in
// and interpolates linearly within it, from 0 in the first bucket; past
// the last bound the estimate is that bound.
func quantile(q float64, buckets []Bucket, count float64) Latency {
	if count <= 0 || len(buckets) == 0 {
		return Latency{Seconds: math.NaN()}
	}
	rank := q * count
	b := 0
	for b < len(buckets) && buckets[b].Count < rank {
		b++
	}
	if b == len(buckets) {
		last := buckets[b-1].UpperBound
		return Latency{Seconds: last, Above: true, Bound: last}
	}
	start, end, inBucket := 0.0, buckets[b].UpperBound, buckets[b].Count
	if b > 0 {
		start = buckets[b-1].UpperBound
		inBucket -= buckets[b-1].Count
		rank -= buckets[b-1].Count
	}
	if b == 0 && end <= 0 {
		return Latency{Seconds: end}
	}
	return Latency{Seconds: start + (end-start)*rank/inBucket, Below: b == 0, Bound: end}
}
