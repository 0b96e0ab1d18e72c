package hostrunner

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func TestHosts(t *testing.T) {
	d := startFakeHosts(t,
		&fakeHost{id: "h2", ip: "10.0.0.2", jobs: map[host.JobState]int{host.StateUp: 3, host.StateStarting: 1, host.StateDown: 7}},
		&fakeHost{id: "h1", ip: "10.0.0.1"},
		&fakeHost{id: "h3", down: true},
	)
	// A host whose registration has not expired yet, though nothing
	// answers at its address any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	d.insts = append(d.insts,
		&discoverd.Instance{Addr: gone, Meta: map[string]string{"id": "h4"}},
		&discoverd.Instance{Addr: "127.0.0.1:1"}, // no id: not a host
	)
	r := New(d, "key", slog.New(slog.DiscardHandler))
	got, err := r.Hosts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []controller.Host{
		{ID: "h1", Addr: "10.0.0.1", Status: controller.HostUp},
		{ID: "h2", Addr: "10.0.0.2", Status: controller.HostUp, Jobs: 4},
		{ID: "h3", Addr: "127.0.0.1", Status: controller.HostUnreachable},
		{ID: "h4", Addr: "127.0.0.1", Status: controller.HostUnreachable},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d hosts, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := *got[i]
		hadErr := g.Error != ""
		g.Error = ""
		if g != w {
			t.Errorf("host %d = %+v, want %+v", i, g, w)
		}
		if hadErr != (w.Status == controller.HostUnreachable) {
			t.Errorf("host %s: error %q, want one exactly when unreachable", w.ID, got[i].Error)
		}
	}
}

func TestHostsNoneRegistered(t *testing.T) {
	r := New(&fakeDiscoverd{}, "key", slog.New(slog.DiscardHandler))
	got, err := r.Hosts(context.Background())
	if err != nil || len(got) != 0 {
		t.Fatalf("Hosts = %v, %v; want an empty list", got, err)
	}
}

// jobListHost is a fakeHost that also answers its job list with stats
// (GET /host/jobs?stats=true): jobs, or failure when failStats.
type jobListHost struct {
	*fakeHost
	jobs      []*host.ActiveJob
	failStats bool

	mu    sync.Mutex
	calls int // job lists with stats asked for
}

func (f *jobListHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.down || r.Method != http.MethodGet || r.URL.Path != "/host/jobs" || r.URL.Query().Get("stats") != "true" {
		f.fakeHost.ServeHTTP(w, r)
		return
	}
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	if f.failStats {
		httpjson.WriteError(w, errors.New("docker: stats unavailable"))
		return
	}
	httpjson.Write(w, http.StatusOK, f.jobs)
}

func (f *jobListHost) statsCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// startJobListHosts serves each host and registers it in a fake discoverd.
func startJobListHosts(t *testing.T, hosts ...*jobListHost) *fakeDiscoverd {
	t.Helper()
	d := &fakeDiscoverd{}
	for _, h := range hosts {
		d.serveHost(t, h.id, h)
	}
	return d
}

// runningJob is a running job with stats, or an ended one without when s
// is nil.
func runningJob(id string, s *host.JobStats) *host.ActiveJob {
	j := &host.ActiveJob{Job: &host.Job{ID: id}, State: host.StateUp, Stats: s}
	if s == nil {
		j.State = host.StateDown
	}
	return j
}

func TestHostsWithStats(t *testing.T) {
	up := map[host.JobState]int{host.StateUp: 2, host.StateDown: 1}
	hosts := []*jobListHost{
		{fakeHost: &fakeHost{id: "h1", ip: "10.0.0.1", jobs: up}, jobs: []*host.ActiveJob{
			runningJob("h1-a", &host.JobStats{CPUPercent: 12.5, MemoryBytes: 100 << 20}),
			runningJob("h1-b", &host.JobStats{CPUPercent: 150, MemoryBytes: 28 << 20}),
			runningJob("h1-c", nil),
		}},
		{fakeHost: &fakeHost{id: "h2", ip: "10.0.0.2", jobs: up}, failStats: true},
		{fakeHost: &fakeHost{id: "h3", down: true}},
		{fakeHost: &fakeHost{id: "h4", ip: "10.0.0.4"}},
	}
	r := New(startJobListHosts(t, hosts...), "key", slog.New(slog.DiscardHandler))

	before := time.Now()
	got, err := r.HostsWithStats(t.Context())
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		status string
		jobs   int
		stats  *controller.HostStats // Time not compared
	}{
		{controller.HostUp, 2, &controller.HostStats{CPUPercent: 162.5, MemoryBytes: 128 << 20, Jobs: 2}},
		{controller.HostUp, 2, nil}, // its stats failed: listed without
		{controller.HostUnreachable, 0, nil},
		{controller.HostUp, 0, &controller.HostStats{}}, // no jobs: zero sums
	}
	if len(got) != len(want) {
		t.Fatalf("got %d hosts, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.ID != hosts[i].id || g.Status != w.status || g.Jobs != w.jobs {
			t.Errorf("host %d = %s %s with %d jobs, want %s %s with %d", i, g.ID, g.Status, g.Jobs, hosts[i].id, w.status, w.jobs)
		}
		if (g.Stats == nil) != (w.stats == nil) {
			t.Errorf("host %s: stats %+v, want %+v", g.ID, g.Stats, w.stats)
			continue
		}
		if g.Stats == nil {
			continue
		}
		if g.Stats.Time.Before(before) || g.Stats.Time.After(after) {
			t.Errorf("host %s: stats read at %v, want within the call (%v to %v)", g.ID, g.Stats.Time, before, after)
		}
		gs := *g.Stats
		gs.Time = time.Time{}
		if gs != *w.stats {
			t.Errorf("host %s: stats %+v, want %+v", g.ID, gs, *w.stats)
		}
	}

	// Without stats, hosts are not asked for them.
	plain, err := r.Hosts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range plain {
		if h.Stats != nil {
			t.Errorf("Hosts: host %s has stats %+v, want none", h.ID, h.Stats)
		}
	}
	for _, h := range hosts[:2] {
		if n := h.statsCalls(); n != 1 {
			t.Errorf("host %s asked for stats %d times, want once (by HostsWithStats only)", h.id, n)
		}
	}
}

func TestSumJobStats(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		jobs []*host.ActiveJob
		want controller.HostStats
	}{
		{"no jobs", nil, controller.HostStats{Time: at}},
		{"none running", []*host.ActiveJob{runningJob("a", nil), nil}, controller.HostStats{Time: at}},
		{"summed", []*host.ActiveJob{
			runningJob("a", &host.JobStats{CPUPercent: 0.5, MemoryBytes: 1 << 30}),
			runningJob("b", nil),
			runningJob("c", &host.JobStats{CPUPercent: 200, MemoryBytes: 3 << 30, MemoryLimitBytes: 4 << 30}),
		}, controller.HostStats{CPUPercent: 200.5, MemoryBytes: 4 << 30, Jobs: 2, Time: at}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sumJobStats(tt.jobs, at)
			if got == nil || *got != tt.want {
				t.Errorf("sumJobStats = %+v, want %+v", got, tt.want)
			}
		})
	}
}
