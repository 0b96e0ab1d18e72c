package server

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// statsRunner is a runner whose hosts read their jobs' stats from stats;
// a host in silent never answers, but gives up when asked to.
type statsRunner struct {
	fakeRunner
	stats  map[string]*host.JobStats
	silent map[string]bool

	mu    sync.Mutex
	asked map[string][]string // host id → job ids asked
}

var _ JobStatsReader = (*statsRunner)(nil)

func (r *statsRunner) JobStats(ctx context.Context, hostID string, jobIDs []string) (map[string]*host.JobStats, error) {
	r.mu.Lock()
	r.asked[hostID] = slices.Sorted(slices.Values(jobIDs))
	r.mu.Unlock()
	if r.silent[hostID] {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	out := map[string]*host.JobStats{}
	for _, id := range jobIDs {
		if s := r.stats[id]; s != nil {
			out[id] = s
		}
	}
	return out, nil
}

// A job list with stats asks each host for its running jobs' stats at
// once; the jobs of a host that does not answer in time are listed
// without, after the timeout rather than never.
func TestJobListWithStats(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	app := h.app(t, "stats")
	rel := h.release(t, app, nil)
	exit := 0
	for _, j := range []*controller.Job{
		{ID: "host1-web", HostID: "host1", State: controller.JobStateUp, Type: "web"},
		{ID: "host1-worker", HostID: "host1", State: controller.JobStateStarting, Type: "worker"},
		{ID: "host2-web", HostID: "host2", State: controller.JobStateUp, Type: "web"},
		{ID: "host3-web", HostID: "host3", State: controller.JobStateUp, Type: "web"},
		{ID: "host1-done", HostID: "host1", State: controller.JobStateDown, ExitStatus: &exit},
	} {
		j.AppID, j.ReleaseID = app.ID, rel.ID
		if err := h.client.PutJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	runner := &statsRunner{
		stats: map[string]*host.JobStats{
			"host1-web":  {CPUPercent: 12.5, MemoryBytes: 64 << 20, MemoryLimitBytes: 512 << 20},
			"host2-web":  {CPUPercent: 0.5, MemoryBytes: 32 << 20},
			"host1-done": {CPUPercent: 99}, // never asked: it ended
		},
		silent: map[string]bool{"host3": true},
		asked:  map[string][]string{},
	}
	srv, err := New(h.store, Options{AuthKey: testKey, Logger: slog.New(slog.DiscardHandler), Runner: runner})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer srv.Close()
	defer hs.Close()
	c := client.New(hs.URL, testKey)

	start := time.Now()
	jobs, err := c.JobsWithStats(ctx, app.Name, false)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if took > jobStatsTimeout+2*time.Second {
		t.Errorf("the list took %s; a silent host must not hold it past %s", took, jobStatsTimeout)
	}
	got := map[string]*host.JobStats{}
	for _, j := range jobs {
		got[j.ID] = j.Stats
	}
	want := map[string]*host.JobStats{
		"host1-web":    runner.stats["host1-web"],
		"host1-worker": nil, // its host read none
		"host2-web":    runner.stats["host2-web"],
		"host3-web":    nil, // its host did not answer
		"host1-done":   nil,
	}
	if len(got) != len(want) {
		t.Fatalf("listed %v, want %d jobs", got, len(want))
	}
	for id, w := range want {
		if g := got[id]; (g == nil) != (w == nil) || (g != nil && *g != *w) {
			t.Errorf("stats of %s = %+v, want %+v", id, g, w)
		}
	}
	wantAsked := map[string][]string{"host1": {"host1-web", "host1-worker"}, "host2": {"host2-web"}, "host3": {"host3-web"}}
	runner.mu.Lock()
	for hostID, ids := range wantAsked {
		if !slices.Equal(runner.asked[hostID], ids) {
			t.Errorf("host %s asked for %v, want %v", hostID, runner.asked[hostID], ids)
		}
	}
	runner.mu.Unlock()

	active, err := c.JobsWithStats(ctx, app.Name, true)
	if err != nil || len(active) != 4 {
		t.Fatalf("active jobs with stats = %v, %v; want the 4 running", active, err)
	}
	// Without ?stats=true nothing asks a host.
	runner.mu.Lock()
	clear(runner.asked)
	runner.mu.Unlock()
	plain, err := c.ActiveJobs(ctx, app.Name)
	if err != nil || len(plain) != 4 || slices.ContainsFunc(plain, func(j *controller.Job) bool { return j.Stats != nil }) {
		t.Fatalf("ActiveJobs = %v, %v; want 4 jobs without stats", plain, err)
	}
	runner.mu.Lock()
	if len(runner.asked) != 0 {
		t.Errorf("a list without stats asked hosts: %v", runner.asked)
	}
	runner.mu.Unlock()

	// A runner that cannot read stats lists the jobs without.
	if jobs, err := h.client.JobsWithStats(ctx, app.Name, true); err != nil || len(jobs) != 4 || jobs[0].Stats != nil {
		t.Errorf("with a runner that reads no stats: %v, %v; want 4 jobs without stats", jobs, err)
	}
	wantCode(t, rawRequest(t, h, "GET", "/apps/"+app.ID+"/jobs?stats=maybe", "", nil, nil), httpjson.CodeValidation, "stats")
}
