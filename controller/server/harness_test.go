package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/pgtest"
)

// One Postgres server for the package; every test gets its own database.
var pg pgtest.Shared

func TestMain(m *testing.M) { goleak.VerifyTestMain(pg.Main(m)) }

const testKey = "test-controller-key"

// harness is a controller on a fresh database behind an httptest server.
type harness struct {
	client *client.Client
	store  *postgres.Store
	server *Server
	url    string
	runner *fakeRunner
	http   *httptest.Server
}

// serverCloseClientConns drops every open client connection.
func (h *harness) serverCloseClientConns() { h.http.CloseClientConnections() }

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessWith(t, nil)
}

// newHarnessWith is newHarness with the server's options changed by mod
// (nil: none).
func newHarnessWith(t testing.TB, mod func(*Options)) *harness {
	t.Helper()
	url := pg.Server(t).NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	runner := &fakeRunner{}
	opts := Options{AuthKey: testKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Runner: runner}
	if mod != nil {
		mod(&opts)
	}
	srv, err := New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
		store.Close()
	})
	return &harness{client: client.New(hs.URL, testKey), store: store, server: srv, url: hs.URL, runner: runner, http: hs}
}

func (h *harness) app(t testing.TB, name string) *controller.App {
	t.Helper()
	app := &controller.App{Name: name}
	if err := h.client.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("create app %q: %v", name, err)
	}
	return app
}

func (h *harness) artifact(t testing.TB) *controller.Artifact {
	t.Helper()
	a := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "flynn/slugrunner:test"}
	if err := h.client.CreateArtifact(t.Context(), a); err != nil {
		t.Fatalf("create artifact: %v", err)
	}
	return a
}

// release creates a release of app with a "web" and a "worker" process type.
func (h *harness) release(t testing.TB, app *controller.App, env map[string]string) *controller.Release {
	t.Helper()
	rel := &controller.Release{
		AppID:      app.ID,
		ArtifactID: h.artifact(t).ID,
		Env:        env,
		Processes: map[string]controller.ProcessType{
			"web":    {Cmd: []string{"start", "web"}, Ports: []controller.Port{{Proto: "tcp"}}, Service: app.Name + "-web"},
			"worker": {Cmd: []string{"start", "worker"}, Resources: &controller.Resources{Memory: 256 << 20}},
		},
	}
	if err := h.client.CreateRelease(t.Context(), rel); err != nil {
		t.Fatalf("create release: %v", err)
	}
	return rel
}

// fakeRunner runs one-off jobs in memory: attached jobs echo their input
// in upper case.
type fakeRunner struct {
	mu    sync.Mutex
	specs []*JobSpec
	fail  error
	wg    sync.WaitGroup
}

var _ JobRunner = (*fakeRunner)(nil)

func (f *fakeRunner) RunJob(_ context.Context, spec *JobSpec) (*controller.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	f.specs = append(f.specs, spec)
	return &controller.Job{ID: fmt.Sprintf("host1-job%d", len(f.specs)), HostID: "host1", State: controller.JobStateStarting}, nil
}

func (f *fakeRunner) RunAttached(ctx context.Context, spec *JobSpec) (*controller.Job, io.ReadWriteCloser, error) {
	job, err := f.RunJob(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	ours, theirs := net.Pipe()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer ours.Close()
		buf := make([]byte, 1024)
		for {
			n, err := ours.Read(buf)
			if n > 0 {
				if _, werr := ours.Write(upper(buf[:n])); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return job, theirs, nil
}

func (f *fakeRunner) ran() []*JobSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*JobSpec(nil), f.specs...)
}

func upper(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		out[i] = c
	}
	return out
}
