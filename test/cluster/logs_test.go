package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/logaggregator/drain/draintest"
	"github.com/openflynn/flynn/pkg/metrics/metricstest"
	"github.com/openflynn/flynn/pkg/poll"
)

// logsApp's processes: a web server that says when it listens; a ticker
// that writes a numbered, timestamped line every 50 ms and a last line at
// SIGTERM; 5,000 numbered lines at 1,000 a second (for a drain); a flood
// of 50,000 lines a second for 10 s.
var logsApp = map[string]controller.ProcessType{
	"web": {Cmd: []string{"python3", "-u", "-c", `import http.server, os, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
port = int(os.environ["PORT"])
print("listening on", port)
http.server.ThreadingHTTPServer(("", port), http.server.SimpleHTTPRequestHandler).serve_forever()
`}},
	"ticker": {Cmd: []string{"python3", "-u", "-c", `import itertools, signal, sys, time
def stop(*_):
    print("ticker stopping")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
for i in itertools.count():
    print("tick", i, repr(time.time()))
    time.sleep(0.05)
`}},
	"drainer": {Cmd: []string{"python3", "-u", "-c", `import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
start = time.time()
for i in range(5000):
    print("drain line", i)
    time.sleep(max(0, start + (i + 1) / 1000 - time.time()))
signal.pause()
`}},
	"flood": {Cmd: []string{"python3", "-c", `import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
out = sys.stdout
start = time.time()
n = 0
while time.time() - start < 10:
    for _ in range(5000):
        out.write("flood line %d of a log at 50,000 lines a second\n" % n)
        n += 1
    out.flush()
    time.sleep(max(0, start + n / 50000 - time.time()))
print("flood done", n, flush=True)
signal.pause()
`}},
}

func scale(t *testing.T, api *client.Client, app *controller.App, releaseID string, counts map[string]int) {
	t.Helper()
	if err := api.PutFormation(t.Context(), &controller.Formation{AppID: app.ID, ReleaseID: releaseID, Processes: counts}); err != nil {
		t.Fatal(err)
	}
}

// follower collects an app's followed lines.
type follower struct {
	mu    sync.Mutex
	lines []logaggregator.Line
	// latencies are the ticker lines' times from the write to here.
	latencies []time.Duration
}

func (f *follower) add(l logaggregator.Line) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines = append(f.lines, l)
	if fields := strings.Fields(l.Data); len(fields) == 3 && fields[0] == "tick" {
		if ts, err := strconv.ParseFloat(fields[2], 64); err == nil {
			f.latencies = append(f.latencies, time.Since(time.UnixMicro(int64(ts*1e6))))
		}
	}
}

// find returns the first line cond holds for.
func (f *follower) find(cond func(*logaggregator.Line) bool) *logaggregator.Line {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.lines {
		if cond(&f.lines[i]) {
			l := f.lines[i]
			return &l
		}
	}
	return nil
}

// TestLogs: `flynn log` reads the log aggregator. Following, it shows the
// lines of a job that started after it began (a scale-up); a stopped job's
// last lines stay; an app's flood does not grow the aggregator past its
// bound. It measures the latency from an app's write to a follower, and
// what the aggregator ingests and at what CPU.
func TestLogs(t *testing.T) {
	repo := clusterRepo(t)
	if _, err := os.Stat("/var/lib/flynn/cluster-add"); err != nil {
		downAtEnd(t, repo)
	}
	script(t, repo, 25*time.Minute, "script/cluster", "up")
	key := readClusterAdd(t, repo).key
	api := controllerClient(key)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	app, rel := deployStack(t, api, repo, "logs", logsApp, map[string]int{"web": 1, "ticker": 1})
	var f follower
	stream, err := api.AppLog(ctx, app.Name, logaggregator.ReadOptions{Follow: true, Lines: 10})
	if err != nil {
		t.Fatal(err)
	}
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		defer stream.Close()
		for {
			l, err := stream.Next()
			if err != nil {
				return
			}
			f.add(l)
		}
	}()
	defer func() {
		cancel()
		stream.Close()
		<-followed
	}()
	isWeb := func(l *logaggregator.Line) bool {
		return l.ProcessType == "web" && strings.HasPrefix(l.Data, "listening on")
	}
	first := poll.Until(t, 2*time.Minute, "the ticker's and the web job's lines followed", func() bool {
		return f.find(isWeb) != nil && f.find(func(l *logaggregator.Line) bool { return l.ProcessType == "ticker" }) != nil
	})
	t.Logf("the first lines came %s after the deploy", first.Round(time.Millisecond))
	webJob := f.find(isWeb).JobID
	if l := f.find(isWeb); l.AppID != app.ID || l.AppName != "logs" || l.ReleaseID != rel.ID || l.HostID == "" || l.Stream != logaggregator.StreamStdout {
		t.Errorf("a line's labels: %+v", l)
	}

	t.Run("scale up while following", func(t *testing.T) {
		scale(t, api, app, rel.ID, map[string]int{"web": 2, "ticker": 1})
		poll.Until(t, 2*time.Minute, "the new web job's first line followed", func() bool {
			return f.find(func(l *logaggregator.Line) bool { return isWeb(l) && l.JobID != webJob }) != nil
		})
	})

	t.Run("a stopped job's last lines stay", func(t *testing.T) {
		ticker := f.find(func(l *logaggregator.Line) bool { return l.ProcessType == "ticker" }).JobID
		if err := api.StopJob(ctx, app.ID, ticker); err != nil {
			t.Fatal(err)
		}
		poll.UntilNil(t, time.Minute, "the stopped ticker's last line in the log", func() error {
			lines := readLog(t, api, app.Name, logaggregator.ReadOptions{JobID: ticker, Lines: 3})
			if len(lines) == 0 || lines[len(lines)-1].Data != "ticker stopping\n" {
				return fmt.Errorf("the job's last lines: %q", datas(lines))
			}
			return nil
		})
	})

	latencies := func() []time.Duration {
		f.mu.Lock()
		defer f.mu.Unlock()
		return slices.Clone(f.latencies)
	}
	// The ticker replaced, 200 of its lines (10 s) to measure by.
	poll.Until(t, time.Minute, "200 ticker lines followed", func() bool { return len(latencies()) >= 200 })
	lat := latencies()
	slices.Sort(lat)
	fmt.Printf("BENCH log latency, an app's write to a follower of the controller's /log: p50 %s, p99 %s (%d lines)\n",
		lat[len(lat)/2].Round(100*time.Microsecond), lat[len(lat)*99/100].Round(100*time.Microsecond), len(lat))

	t.Run("a drain gets every line in order", func(t *testing.T) {
		recv := draintest.NewSyslog(t)
		d, err := api.CreateLogDrain(ctx, app.Name, "syslog+tcp://"+recv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		// The aggregator starts the drain when the controller's event
		// says it was added; a line of the ticker's shows it runs.
		poll.Until(t, time.Minute, "the drain running", func() bool { return len(recv.Messages()) > 0 })
		scale(t, api, app, rel.ID, map[string]int{"web": 2, "ticker": 1, "drainer": 1})
		poll.UntilNil(t, 2*time.Minute, "the drainer's 5,000 lines drained", func() error {
			if n := len(recv.Matching("drain line ")); n < 5000 {
				return fmt.Errorf("%d of 5,000 lines drained", n)
			}
			return nil
		})
		got := recv.Matching("drain line ")
		if len(got) != 5000 {
			t.Fatalf("drained %d lines, want 5,000", len(got))
		}
		for i, m := range got {
			if m != fmt.Sprintf("drain line %d", i) {
				t.Fatalf("drained line %d is %q", i, m)
			}
		}
		drains, err := api.AppLogDrains(ctx, app.Name)
		if err != nil || len(drains) != 1 || drains[0].Stats == nil || drains[0].Stats.Dropped != 0 || drains[0].Stats.Sent < 5000 {
			t.Errorf("drain list %+v, %v; want its stats, nothing dropped", drains, err)
		}
		if _, err := api.DeleteLogDrain(ctx, app.Name, d.ID); err != nil {
			t.Fatal(err)
		}
		scale(t, api, app, rel.ID, map[string]int{"web": 2, "ticker": 1})
	})

	t.Run("the router's line for a request", func(t *testing.T) {
		domain := "logs." + domain
		if err := api.CreateRoute(ctx, app.ID, &controller.Route{Type: controller.RouteTypeHTTP, Service: app.Name + "-web", Domain: domain}); err != nil {
			t.Fatal(err)
		}
		poll.UntilNil(t, time.Minute, "the app answers through the router", func() error { return get("127.0.0.1", domain) })
		poll.UntilNil(t, 30*time.Second, "a router line in the app's log", func() error {
			for _, l := range readLog(t, api, app.Name, logaggregator.ReadOptions{ProcessType: logaggregator.ProcessTypeRouter}) {
				if strings.Contains(l.Data, "method=GET") && strings.Contains(l.Data, "host="+domain) && strings.Contains(l.Data, "status=200") && strings.Contains(l.Data, "backend=") {
					return nil
				}
			}
			return fmt.Errorf("no router line for GET %s", domain)
		})
	})

	t.Run("a flood stays within the aggregator's bound", func(t *testing.T) {
		ck := clusterKey(t)
		before := aggregatorMetrics(t, ck)
		hostDropped := func() float64 {
			dropped, ok := metricstest.Get(t, "http://127.0.0.1:1113/metrics", ck).Find("flynn_host_log_lines_dropped_total", nil)
			if !ok {
				t.Fatal("flynn-host has no flynn_host_log_lines_dropped_total")
			}
			return dropped.Value
		}
		droppedBefore := hostDropped()
		began := time.Now()
		scale(t, api, app, rel.ID, map[string]int{"web": 2, "ticker": 1, "flood": 1})
		poll.UntilNil(t, 3*time.Minute, "the flood's last line in the log", func() error {
			lines := readLog(t, api, app.Name, logaggregator.ReadOptions{ProcessType: "flood", Lines: 1})
			if len(lines) == 0 || !strings.HasPrefix(lines[0].Data, "flood done") {
				return fmt.Errorf("the flood's last line: %q", datas(lines))
			}
			return nil
		})
		took := time.Since(began)
		after := aggregatorMetrics(t, ck)
		kept := len(readLog(t, api, app.Name, logaggregator.ReadOptions{Lines: 0}))
		if kept > logaggregator.DefaultLinesPerApp {
			t.Errorf("the aggregator keeps %d lines of the app, more than its bound %d", kept, logaggregator.DefaultLinesPerApp)
		}
		in := after["flynn_logaggregator_lines_in_total"] - before["flynn_logaggregator_lines_in_total"]
		cpu := after["process_cpu_seconds_total"] - before["process_cpu_seconds_total"]
		rss := after["process_resident_memory_bytes"]
		fmt.Printf("BENCH log aggregator: %.0f lines in %s (%.0f lines/s), %.2f CPU-seconds (%.0f lines per CPU-second); RSS %.1f MiB after, %.1f MiB before; %d lines of the app kept; flynn-host's shipper dropped %.0f lines (its queue full)\n",
			in, took.Round(time.Millisecond), in/took.Seconds(), cpu, in/max(cpu, 0.001), rss/(1<<20), before["process_resident_memory_bytes"]/(1<<20), kept, hostDropped()-droppedBefore)
		if rss > 256<<20 {
			t.Errorf("the aggregator's RSS is %.0f MiB after a flood, past its bound", rss/(1<<20))
		}
	})
}

// readLog reads an app's lines, not following.
func readLog(t *testing.T, api *client.Client, app string, opts logaggregator.ReadOptions) []logaggregator.Line {
	t.Helper()
	s, err := api.AppLog(t.Context(), app, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []logaggregator.Line
	for {
		l, err := s.Next()
		if err != nil {
			return out
		}
		out = append(out, l)
	}
}

func datas(lines []logaggregator.Line) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Data)
	}
	return out
}

// aggregatorMetrics scrapes the log aggregator's metrics, found in
// discoverd, with the cluster key: each series' value by name (unlabelled
// series only).
func aggregatorMetrics(t *testing.T, clusterKey string) map[string]float64 {
	t.Helper()
	addr, err := instance(logaggregator.ServiceName, clusterKey)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, series := range metricstest.Get(t, "http://"+addr+"/metrics", clusterKey) {
		for _, s := range series {
			if len(s.Labels) == 0 {
				out[name] = s.Value
			}
		}
	}
	return out
}

// TestEveryDaemonServesMetrics: each daemon of a running cluster serves
// Prometheus's text format behind its key (401 without), with the Go and
// process series and its own.
func TestEveryDaemonServesMetrics(t *testing.T) {
	repo := clusterRepo(t)
	if _, err := os.Stat("/var/lib/flynn/cluster-add"); err != nil {
		downAtEnd(t, repo)
	}
	script(t, repo, 25*time.Minute, "script/cluster", "up")
	key := clusterKey(t)
	tests := []struct {
		daemon, service, addr string
		series                []string
	}{
		{"flynn-host", "", "127.0.0.1:1113", []string{"flynn_host_jobs", "flynn_host_job_starts_total", "flynn_host_container_start_duration_seconds", "flynn_host_job_cpu_seconds_total", "flynn_host_job_memory_bytes", "flynn_host_log_lines_shipped_total"}},
		{"discoverd", "", "127.0.0.1:1111", []string{"flynn_discoverd_instances", "flynn_discoverd_watchers", "flynn_discoverd_etcd_request_duration_seconds", "flynn_discoverd_is_etcd_member"}},
		{"controller", "controller", "", []string{"flynn_controller_http_requests_total", "flynn_controller_http_request_duration_seconds", "flynn_controller_db_pool_total_connections"}},
		{"scheduler", "flynn-scheduler-metrics", "", []string{"flynn_scheduler_rounds_total", "flynn_scheduler_round_duration_seconds", "flynn_scheduler_jobs_started_total", "flynn_scheduler_is_leader"}},
		{"router", "router-http", "", []string{"flynn_router_requests_total", "flynn_router_backends", "flynn_router_log_lines_shipped_total"}},
		{"blobstore", "blobstore", "", []string{"flynn_blobstore_http_requests_total", "flynn_blobstore_bytes_in_total", "flynn_blobstore_bytes_out_total"}},
		{"gitreceive", "gitreceive-metrics", "", []string{"flynn_gitreceive_builds_total", "flynn_gitreceive_ssh_connections"}},
		{"log aggregator", logaggregator.ServiceName, "", []string{"flynn_logaggregator_lines_in_total", "flynn_logaggregator_lines_kept", "flynn_logaggregator_http_requests_total"}},
		{"dashboard", "dashboard", "", []string{"flynn_dashboard_http_requests_total", "flynn_dashboard_http_request_duration_seconds"}},
	}
	for _, tt := range tests {
		t.Run(tt.daemon, func(t *testing.T) {
			addr := tt.addr
			if addr == "" {
				poll.UntilNil(t, 2*time.Minute, tt.service+" in discoverd", func() error {
					var err error
					addr, err = instance(tt.service, key)
					return err
				})
			}
			url := "http://" + addr + "/metrics"
			if code := metricstest.Status(t, url, ""); code != http.StatusUnauthorized {
				t.Errorf("GET %s without the key: %d, want 401", url, code)
			}
			scraped := metricstest.Get(t, url, key)
			for _, name := range append([]string{"go_goroutines", "process_cpu_seconds_total", "process_resident_memory_bytes"}, tt.series...) {
				if !scraped.Has(name) {
					t.Errorf("%s has no %s", tt.daemon, name)
				}
			}
		})
	}
}
