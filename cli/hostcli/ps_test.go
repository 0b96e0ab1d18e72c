package hostcli

import (
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
)

// fixtureJobs are a host's jobs in each kind of state: up with ports,
// pending, and finished with and without success.
func fixtureJobs() []*host.ActiveJob {
	status := func(n int) *int { return &n }
	return []*host.ActiveJob{
		{
			Job: &host.Job{ID: "host1-web", Artifact: "flynn/slugrunner:4f2a", Config: host.JobConfig{
				Args: []string{"start", "web"}, Ports: []host.Port{{Port: 55000}, {Port: 55001}},
			}},
			HostID: "host1", State: host.StateUp,
			CreatedAt: testNow.Add(-91 * time.Second), StartedAt: testNow.Add(-90 * time.Second),
		},
		{
			Job:    &host.Job{ID: "host1-pending", Artifact: "busybox", Config: host.JobConfig{Args: []string{"sleep", "60"}}},
			HostID: "host1", State: host.StatePending, CreatedAt: testNow.Add(-time.Second),
		},
		{
			Job:    &host.Job{ID: "host1-done", Artifact: "busybox", Config: host.JobConfig{Args: []string{"echo", "hi"}}},
			HostID: "host1", State: host.StateDown, ExitStatus: status(0),
			CreatedAt: testNow.Add(-time.Hour), StartedAt: testNow.Add(-time.Hour), EndedAt: testNow.Add(-time.Hour),
		},
		{
			Job:    &host.Job{ID: "host1-crash", Artifact: "busybox", Config: host.JobConfig{Args: []string{"false"}}},
			HostID: "host1", State: host.StateCrashed, ExitStatus: status(2),
			CreatedAt: testNow.Add(-2 * time.Minute), StartedAt: testNow.Add(-2 * time.Minute), EndedAt: testNow.Add(-time.Minute),
		},
	}
}

// fakeStats are the stats the fake host reads for its running jobs.
var fakeStats = map[string]*host.JobStats{
	"host1-web": {CPUPercent: 12.46, MemoryBytes: 47395635, MemoryLimitBytes: 256 << 20},
}

func TestPs(t *testing.T) {
	h := newFakeHost(t, fixtureJobs()...)
	tests := []struct {
		name string
		args []string
	}{
		{"ps", []string{"ps"}},
		{"ps-all", []string{"ps", "-a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.run(t, Env{}, tt.args...)
			if res.code != 0 || res.stderr != "" {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			golden(t, tt.name, res.stdout)
		})
	}
}

func TestPsWrongKey(t *testing.T) {
	h := newFakeHost(t)
	res := h.run(t, Env{}, "--key", "wrong", "ps")
	if want := "flynn-host: unauthorized: missing or wrong cluster key\n"; res.code != 1 || res.stderr != want || res.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and %q", res.code, res.stdout, res.stderr, want)
	}
}
