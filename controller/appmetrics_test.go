package controller

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// steadyReading is two routers' totals under steady traffic, the nth
// reading (from 0) from base requests: every 5 s (by the readings' clock)
// 50 requests, 4 of them answered 5xx and 1 given up by its client; 20
// within 10ms, 45 within 100ms, all within 1s. A smaller base than the
// previous reading's is a router's restart.
func steadyReading(base float64, n int) *AppMetrics {
	k := float64(n)
	return &AppMetrics{
		Time:          time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(n) * 5 * time.Second),
		Routers:       2,
		Requests:      base + 50*k,
		ByStatus:      map[string]float64{"2xx": 0.9*base + 45*k, "5xx": 0.09*base + 4*k, "499": 0.01*base + k},
		Duration:      []Bucket{{UpperBound: .01, Count: base/2 + 20*k}, {UpperBound: .1, Count: 0.9*base + 45*k}, {UpperBound: 1, Count: base + 50*k}},
		DurationCount: base + 50*k,
	}
}

func TestQuantile(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name    string
		q       float64
		buckets []Bucket
		count   float64
		want    Latency // Seconds NaN: no estimate
	}{
		{"no requests", 0.99, []Bucket{{UpperBound: .001}, {UpperBound: .01}}, 0, Latency{Seconds: nan}},
		{"no buckets", 0.99, nil, 5, Latency{Seconds: nan}},
		{"all in the first bucket", 0.99, []Bucket{{UpperBound: .001, Count: 10}, {UpperBound: .0025, Count: 10}}, 10, Latency{Seconds: .00099, Below: true, Bound: .001}},
		{"a first bound of 0", 0.5, []Bucket{{UpperBound: 0, Count: 4}, {UpperBound: .1, Count: 4}}, 4, Latency{Seconds: 0}},
		{"the bucket's upper bound", 0.5, []Bucket{{UpperBound: .1}, {UpperBound: .25, Count: 50}, {UpperBound: .5, Count: 100}}, 100, Latency{Seconds: .25, Bound: .25}},
		{"interpolated", 0.99, []Bucket{{UpperBound: .1}, {UpperBound: .25, Count: 50}, {UpperBound: .5, Count: 100}}, 100, Latency{Seconds: .495, Bound: .5}},
		{"within milliseconds", 0.5, []Bucket{{UpperBound: .005, Count: 2}, {UpperBound: .01, Count: 6}, {UpperBound: .025, Count: 10}}, 10, Latency{Seconds: .00875, Bound: .01}},
		{"past the last bound", 0.99, []Bucket{{UpperBound: 1, Count: 5}, {UpperBound: 30, Count: 8}}, 10, Latency{Seconds: 30, Above: true, Bound: 30}},
		{"empty buckets skipped", 0.5, []Bucket{{UpperBound: .01}, {UpperBound: .1}, {UpperBound: 1, Count: 4}, {UpperBound: 2.5, Count: 4}}, 4, Latency{Seconds: .55, Bound: 1}},
		{"seconds", 0.5, []Bucket{{UpperBound: 1}, {UpperBound: 2.5, Count: 4}}, 4, Latency{Seconds: 1.75, Bound: 2.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := quantile(tt.q, tt.buckets, tt.count)
			sameSeconds := math.IsNaN(got.Seconds) == math.IsNaN(tt.want.Seconds) && (math.IsNaN(got.Seconds) || math.Abs(got.Seconds-tt.want.Seconds) <= 1e-12)
			if !sameSeconds || got.Below != tt.want.Below || got.Above != tt.want.Above || got.Bound != tt.want.Bound {
				t.Errorf("quantile(%v) = %+v, want %+v", tt.q, got, tt.want)
			}
			if (got.seconds() == nil) != math.IsNaN(tt.want.Seconds) {
				t.Errorf("seconds() = %v, want nil exactly without an estimate", got.seconds())
			}
		})
	}
}

func TestMetricsBetween(t *testing.T) {
	first := steadyReading(1000, 0)
	oneGone := steadyReading(1000, 1)
	oneGone.Routers, oneGone.RoutersFailed = 1, 1
	sameTime := steadyReading(1000, 1)
	sameTime.Time = first.Time
	newClass := steadyReading(1000, 1)
	newClass.ByStatus["1xx"] = 3
	classGone := steadyReading(1000, 1)
	delete(classGone.ByStatus, "499")
	tests := []struct {
		name       string
		a, b       *AppMetrics
		fails      string // "" succeeds
		is         error  // the error fails wraps, if any
		rate       float64
		errorPct   float64
		clientGone float64
		p50, p99   float64
	}{
		{name: "steady", a: first, b: steadyReading(1000, 1), rate: 10, errorPct: 8, clientGone: 1, p50: .028, p99: .91},
		{name: "a router restarted", a: first, b: steadyReading(10, 1), fails: "a router restarted", is: ErrRouterRestarted},
		{name: "a status class went down", a: first, b: classGone, fails: "a router restarted", is: ErrRouterRestarted},
		{name: "a router stopped answering", a: first, b: oneGone, fails: "the routers that answered changed (2 of 2, then 1 of 2)"},
		{name: "no time between by the readings' clock", a: first, b: sameTime, rate: 5, errorPct: 8, clientGone: 1, p50: .028, p99: .91},
		{name: "a class first counted", a: first, b: newClass, rate: 10, errorPct: 8, clientGone: 1, p50: .028, p99: .91},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := MetricsBetween(tt.a, tt.b, 10*time.Second)
			if tt.fails != "" {
				if err == nil || !strings.Contains(err.Error(), tt.fails) {
					t.Fatalf("err %v, want %q", err, tt.fails)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("err %v, want one that is %v", err, tt.is)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if w.RequestsPerSecond != tt.rate || w.ErrorPercent == nil || *w.ErrorPercent != tt.errorPct || w.ClientGone != tt.clientGone {
				t.Errorf("rate %v, errors %v%%, client gone %v; want %v, %v%%, %v", w.RequestsPerSecond, deref(w.ErrorPercent), w.ClientGone, tt.rate, tt.errorPct, tt.clientGone)
			}
			if w.P50 == nil || math.Abs(*w.P50-tt.p50) > 1e-9 || w.P99 == nil || math.Abs(*w.P99-tt.p99) > 1e-9 {
				t.Errorf("p50 %v, p99 %v; want %v, %v", deref(w.P50), deref(w.P99), tt.p50, tt.p99)
			}
			if w.Time != tt.b.Time || w.Routers != 2 || w.RoutersFailed != 0 {
				t.Errorf("time %v, routers %d+%d failed; want the second reading's %v, 2+0", w.Time, w.Routers, w.RoutersFailed, tt.b.Time)
			}
		})
	}
}

// TestMetricsBetweenIdle: without requests there is no error share and no
// latency, in Go and in JSON.
func TestMetricsBetweenIdle(t *testing.T) {
	w, err := MetricsBetween(steadyReading(1000, 0), steadyReading(1000, 0), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if w.IntervalSeconds != 5 || w.Requests != 0 || w.RequestsPerSecond != 0 {
		t.Errorf("interval %vs, %v requests, %v/s; want 5s, 0, 0", w.IntervalSeconds, w.Requests, w.RequestsPerSecond)
	}
	if w.ErrorPercent != nil || w.P50 != nil || w.P99 != nil || !math.IsNaN(w.P50Estimate.Seconds) || !math.IsNaN(w.P99Estimate.Seconds) {
		t.Errorf("error share %v, p50 %v (%+v), p99 %v (%+v); want none", deref(w.ErrorPercent), deref(w.P50), w.P50Estimate, deref(w.P99), w.P99Estimate)
	}
}

// TestMetricsWindowJSON: the JSON names are `flynn metrics --json`'s, in
// its order, and the estimates' bounds stay out of it.
func TestMetricsWindowJSON(t *testing.T) {
	w, err := MetricsBetween(steadyReading(1000, 0), steadyReading(1000, 1), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if _, err := dec.Token(); err != nil { // {
		t.Fatal(err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"time", "interval_seconds", "requests", "requests_per_second", "by_status", "errors", "error_percent", "client_gone", "p50_seconds", "p99_seconds", "routers", "routers_failed"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
