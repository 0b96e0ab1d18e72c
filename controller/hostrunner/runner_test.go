package hostrunner

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/server"
	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// fakeHost is a host API that reports a job count and records added jobs.
type fakeHost struct {
	id   string
	ip   string // reported as its ExternalIP
	jobs map[host.JobState]int
	down bool

	mu    sync.Mutex
	added []*host.Job
}

func (f *fakeHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case f.down:
		httpjson.WriteError(w, httpjson.Errorf(httpjson.CodeServiceUnavailable, "down"))
	case r.Method == http.MethodGet && r.URL.Path == "/host/status":
		httpjson.Write(w, http.StatusOK, &host.HostStatus{ID: f.id, ExternalIP: f.ip, Jobs: f.jobs})
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/host/jobs/"):
		var j host.Job
		if err := json.NewDecoder(r.Body).Decode(&j); err != nil {
			httpjson.WriteError(w, httpjson.ValidationError("", "%v", err))
			return
		}
		f.mu.Lock()
		f.added = append(f.added, &j)
		f.mu.Unlock()
		httpjson.Write(w, http.StatusOK, &host.ActiveJob{Job: &j, HostID: f.id, State: host.StateStarting})
	default:
		httpjson.WriteError(w, httpjson.NotFound("no such endpoint"))
	}
}

func (f *fakeHost) addedJobs() []*host.Job {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*host.Job(nil), f.added...)
}

// fakeDiscoverd answers Instances with a fixed list.
type fakeDiscoverd struct{ insts []*discoverd.Instance }

func (f *fakeDiscoverd) Instances(_ context.Context, service string) ([]*discoverd.Instance, error) {
	if service != HostService {
		return nil, httpjson.NotFound("service %s", service)
	}
	return f.insts, nil
}

func startFakeHosts(t *testing.T, hosts ...*fakeHost) *fakeDiscoverd {
	t.Helper()
	d := &fakeDiscoverd{}
	for _, h := range hosts {
		d.serveHost(t, h.id, h)
	}
	return d
}

// serveHost serves h as the host API of host id until t ends, registered
// in d.
func (d *fakeDiscoverd) serveHost(t *testing.T, id string, h http.Handler) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	d.insts = append(d.insts, &discoverd.Instance{Addr: strings.TrimPrefix(srv.URL, "http://"), Meta: map[string]string{"id": id}})
}

func testSpec() *server.JobSpec {
	return &server.JobSpec{
		Job:      &controller.Job{AppID: "app1", ReleaseID: "rel1", Args: []string{"echo", "hi"}, Meta: map[string]string{"purpose": "test", controller.JobMetaType: "web"}},
		Artifact: &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "img:1"},
		Env:      map[string]string{"A": "1"},
		Process:  controller.ProcessType{Resources: &controller.Resources{Memory: 64 << 20, CPU: 500}},
	}
}

func TestRunJobPicksLeastLoadedHost(t *testing.T) {
	tests := []struct {
		name  string
		hosts []*fakeHost
		want  string
	}{
		{"fewest active jobs", []*fakeHost{
			{id: "a", jobs: map[host.JobState]int{host.StateUp: 3}},
			{id: "b", jobs: map[host.JobState]int{host.StateUp: 1, host.StateStarting: 1}},
			{id: "c", jobs: map[host.JobState]int{host.StateUp: 2, host.StatePending: 1}},
		}, "b"},
		{"ended jobs do not count", []*fakeHost{
			{id: "a", jobs: map[host.JobState]int{host.StateUp: 1}},
			{id: "b", jobs: map[host.JobState]int{host.StateDown: 9, host.StateCrashed: 4}},
		}, "b"},
		{"ties go to the lowest id", []*fakeHost{
			{id: "z", jobs: nil},
			{id: "m", jobs: nil},
		}, "m"},
		{"a host that does not answer is passed over", []*fakeHost{
			{id: "a", down: true},
			{id: "b", jobs: map[host.JobState]int{host.StateUp: 5}},
		}, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(startFakeHosts(t, tt.hosts...), "key", slog.New(slog.DiscardHandler))
			job, err := r.RunJob(t.Context(), testSpec())
			if err != nil {
				t.Fatal(err)
			}
			if job.HostID != tt.want || !strings.HasPrefix(job.ID, tt.want+"-") {
				t.Fatalf("job %s on host %s, want host %s", job.ID, job.HostID, tt.want)
			}
			for _, h := range tt.hosts {
				n := len(h.addedJobs())
				if (h.id == tt.want) != (n == 1) {
					t.Errorf("host %s got %d jobs", h.id, n)
				}
			}
		})
	}
}

// The translation itself is hostjob's (and tested there); this checks what
// the runner hands it from a spec.
func TestJobForSpec(t *testing.T) {
	spec := testSpec()
	spec.TTY = true
	j := spec.HostJob("h1")
	if !strings.HasPrefix(j.ID, "h1-") {
		t.Errorf("id = %q, want h1-<uuid>", j.ID)
	}
	if _, ok := j.Metadata[controller.JobMetaType]; ok {
		t.Errorf("metadata %v has a process type: the scheduler would adopt the job", j.Metadata)
	}
	for k, want := range map[string]string{controller.JobMetaAppID: "app1", controller.JobMetaReleaseID: "rel1", "purpose": "test"} {
		if got := j.Metadata[k]; got != want {
			t.Errorf("metadata[%s] = %q, want %q", k, got, want)
		}
	}
	if j.Artifact != "img:1" || strings.Join(j.Config.Args, " ") != "echo hi" || !j.Config.TTY {
		t.Errorf("artifact %q args %v tty %v", j.Artifact, j.Config.Args, j.Config.TTY)
	}
	if j.Config.Env["A"] != "1" || j.Config.Env["FLYNN_JOB_ID"] != j.ID || j.Config.Env["FLYNN_APP_ID"] != "app1" {
		t.Errorf("env = %v", j.Config.Env)
	}
	if j.Config.Resources.Memory != 64<<20 || j.Config.Resources.CPUShares != 512 || len(j.Config.Ports) != 0 {
		t.Errorf("resources = %+v, ports %v", j.Config.Resources, j.Config.Ports)
	}
}

func TestNoHosts(t *testing.T) {
	r := New(&fakeDiscoverd{}, "", slog.New(slog.DiscardHandler))
	_, err := r.RunJob(t.Context(), testSpec())
	if !httpjson.IsCode(err, httpjson.CodeServiceUnavailable) {
		t.Fatalf("err = %v, want service_unavailable", err)
	}
	_, _, err = r.RunAttached(t.Context(), testSpec())
	if !httpjson.IsCode(err, httpjson.CodeServiceUnavailable) {
		t.Fatalf("attached err = %v, want service_unavailable", err)
	}
}

var _ io.ReadWriteCloser = (*attachStream)(nil)
