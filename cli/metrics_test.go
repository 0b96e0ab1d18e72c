package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/server"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/syncbuf"
)

// fakeRouterMetrics stands in for the routers: its nth reading (from 0)
// is reading(n).
type fakeRouterMetrics struct {
	mu      sync.Mutex
	calls   int
	reading func(n int) (*controller.AppMetrics, error)
}

var _ server.RouterMetrics = (*fakeRouterMetrics)(nil)

func (f *fakeRouterMetrics) AppMetrics(context.Context, []string) (*controller.AppMetrics, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reading == nil {
		return nil, errors.New("no routers in this test")
	}
	n := f.calls
	f.calls++
	return f.reading(n)
}

// set starts the readings over with reading.
func (f *fakeRouterMetrics) set(reading func(n int) (*controller.AppMetrics, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.reading = 0, reading
}

// steady is two routers' totals under steady traffic: every 5 s (by the
// readings' clock) 50 requests, 4 of them answered 5xx and 1 given up by
// its client; 20 within 10ms, 45 within 100ms, all within 1s.
func steady(n int) (*controller.AppMetrics, error) {
	return steadyFrom(1000, n), nil
}

// steadyFrom is steady from base requests, as after a restart.
func steadyFrom(base float64, n int) *controller.AppMetrics {
	k := float64(n)
	return &controller.AppMetrics{
		Time:          goldenNow.Add(time.Duration(n) * 5 * time.Second),
		Routers:       2,
		Requests:      base + 50*k,
		ByStatus:      map[string]float64{"2xx": 0.9*base + 45*k, "5xx": 0.09*base + 4*k, "499": 0.01*base + k},
		Duration:      []controller.Bucket{{UpperBound: .01, Count: base/2 + 20*k}, {UpperBound: .1, Count: 0.9*base + 45*k}, {UpperBound: 1, Count: base + 50*k}},
		DurationCount: base + 50*k,
	}
}

// TestFormatLatency: an estimate in the first bucket or past the last
// shows its bound, not the guess (the estimate itself is
// controller.MetricsBetween's, tested there).
func TestFormatLatency(t *testing.T) {
	tests := []struct {
		name string
		l    controller.Latency
		want string
	}{
		{"no requests", controller.Latency{Seconds: math.NaN()}, "-"},
		{"in the first bucket", controller.Latency{Seconds: .00099, Below: true, Bound: .001}, "< 1ms"},
		{"at a bound", controller.Latency{Seconds: .25, Bound: .25}, "250ms"},
		{"interpolated", controller.Latency{Seconds: .495, Bound: .5}, "495ms"},
		{"within milliseconds", controller.Latency{Seconds: .00875, Bound: .01}, "8.8ms"},
		{"past the last bound", controller.Latency{Seconds: 30, Above: true, Bound: 30}, "> 30s"},
		{"seconds", controller.Latency{Seconds: 1.75, Bound: 2.5}, "1.8s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatLatency(tt.l); got != tt.want {
				t.Errorf("formatLatency(%+v) = %q, want %q", tt.l, got, tt.want)
			}
		})
	}
}

func TestFormatSeconds(t *testing.T) {
	tests := []struct {
		s    float64
		want string
	}{
		{0, "0ms"},
		{.00025, "0.25ms"},
		{.001, "1ms"},
		{.0025, "2.5ms"},
		{.00994, "9.9ms"},
		{.00996, "10ms"},
		{.0284, "28ms"},
		{.9994, "999ms"},
		{.9996, "1s"},
		{1.25, "1.3s"},
		{30, "30s"},
	}
	for _, tt := range tests {
		if got := formatSeconds(tt.s); got != tt.want {
			t.Errorf("formatSeconds(%v) = %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestMetricsGolden(t *testing.T) {
	first, _ := steady(0)
	second, _ := steady(1)
	failed := steadyFrom(1000, 0)
	failed.Routers, failed.RoutersFailed = 1, 2
	failedLater := steadyFrom(1000, 2)
	failedLater.Routers, failedLater.RoutersFailed = 1, 2
	fast := steadyFrom(1000, 0)
	fastLater := steadyFrom(1000, 1)
	for _, m := range []*controller.AppMetrics{fast, fastLater} {
		for i := range m.Duration {
			m.Duration[i].Count = m.DurationCount
		}
	}
	tests := []struct {
		name string
		a, b *controller.AppMetrics
	}{
		{"metrics", first, second},
		{"metrics-failed-routers", failed, failedLater},
		{"metrics-fast", fast, fastLater},
		{"metrics-idle", first, steadyFrom(1000, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "metrics-idle" {
				tt.b.Time = tt.a.Time.Add(5 * time.Second)
			}
			w, err := controller.MetricsBetween(tt.a, tt.b, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := renderMetrics(&buf, "example", w); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, buf.Bytes())
		})
	}
}

// TestMetrics: `flynn metrics` reads twice, --interval apart, and shows
// the rates between, for people and as JSON.
func TestMetrics(t *testing.T) {
	h := newHarness(t)
	h.app("example")
	h.fails("the routers cannot be found", "-a", "example", "metrics", "--interval", "1s")
	h.fails("--interval must be at least 1s", "-a", "example", "metrics", "--interval", "500ms")
	h.fails("not found", "-a", "nope", "metrics")

	h.runner.routerMetrics.set(steady)
	want := "=== example: the last 5s\n" +
		"Requests: 10.0/s (50)\n" +
		"Errors: 8.0% answered 5xx (4)\n" +
		"Client gone: 1 (499: went away before the answer)\n" +
		"Latency: p50 28ms, p99 910ms\n" +
		"Routers: 2 of 2 answered\n"
	if out := squash(h.ok("-a", "example", "metrics", "--interval", "1s")); out != want {
		t.Errorf("metrics:\n%s\nwant:\n%s", out, want)
	}

	h.runner.routerMetrics.set(steady)
	var w struct {
		Seconds      float64  `json:"interval_seconds"`
		Rate         float64  `json:"requests_per_second"`
		ErrorPercent float64  `json:"error_percent"`
		ClientGone   float64  `json:"client_gone"`
		P50          *float64 `json:"p50_seconds"`
		P99          *float64 `json:"p99_seconds"`
		Routers      int      `json:"routers"`
	}
	out := h.ok("-a", "example", "metrics", "--interval", "1s", "--json")
	if err := json.Unmarshal([]byte(out), &w); err != nil {
		t.Fatalf("metrics --json: %v\n%s", err, out)
	}
	if w.Seconds != 5 || w.Rate != 10 || w.ErrorPercent != 8 || w.ClientGone != 1 || w.P50 == nil || math.Abs(*w.P50-.028) > 1e-9 || w.P99 == nil || math.Abs(*w.P99-.91) > 1e-9 || w.Routers != 2 {
		t.Errorf("metrics --json:\n%s", out)
	}

	h.runner.routerMetrics.set(func(n int) (*controller.AppMetrics, error) { return steadyFrom(1000/float64(n+1), n), nil })
	h.fails("a router restarted between the readings; try again", "-a", "example", "metrics", "--interval", "1s")
}

// TestMetricsFollow: -f shows every interval until interrupted, skipping
// (and saying so) the one across a router's restart; with --json one
// object a line.
func TestMetricsFollow(t *testing.T) {
	h := newHarness(t)
	h.app("example")
	h.runner.routerMetrics.set(func(n int) (*controller.AppMetrics, error) {
		if n >= 2 { // a router restarted before the third reading
			return steadyFrom(10, n), nil
		}
		return steady(n)
	})
	var out, errOut syncbuf.Buffer
	env := h.env
	env.Stdin, env.Stdout, env.Stderr = strings.NewReader(""), &out, &errOut
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"flynn", "-a", "example", "metrics", "-f", "--json", "--interval", "1s"}, &env)
	}()
	poll.Until(t, 20*time.Second, "two intervals shown", func() bool { return strings.Count(out.String(), "\n") >= 2 })
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("metrics -f ended with %d; stderr %q", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	for i, l := range lines {
		var w struct {
			Rate float64 `json:"requests_per_second"`
		}
		if err := json.Unmarshal([]byte(l), &w); err != nil || w.Rate != 10 {
			t.Errorf("line %d: %q (%v), want an object with requests_per_second 10", i+1, l, err)
		}
	}
	if got := errOut.String(); got != "flynn: "+controller.ErrRouterRestarted.Error()+"; this interval is skipped\n" {
		t.Errorf("stderr %q, want the restart said once", got)
	}
}
