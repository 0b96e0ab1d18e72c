package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerclient "github.com/docker/docker/client"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/host/docker"
	"github.com/openflynn/flynn/host/hosttest"
	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/random"
)

const testKey = "test-cluster-key"

// testHost is a daemon on the real Docker engine behind the real HTTP API,
// reached through the real client.
type testHost struct {
	t        testing.TB
	cfg      daemon.Config
	docker   *dockerclient.Client
	backend  *docker.Backend
	reg      *fakeRegistrar
	d        *daemon.Daemon
	srv      *httptest.Server
	c        *client.Client
	image    string
	shutOnce sync.Once
}

func newTestHost(t testing.TB, tune func(*daemon.Config)) *testHost {
	t.Helper()
	dc := hosttest.Docker(t)
	img := hosttest.Build(t, dc)
	// Test hosts take job ports below the kernel's ephemeral range
	// (32768+), apart from each other package's: host/server 20000-29999,
	// hostrunner 30000-32699, cmd/flynn-host 19100-19199, test/scheduler
	// 10000-14999.
	lo := 20000 + rand.IntN(100)*100
	// An app network and firewall chain of the test's own, removed after
	// the daemon stopped and its containers are gone.
	appNet := hosttest.NewAppNetwork(t, dc)
	cfg := daemon.Config{
		HostID:            "t" + random.Hex(4),
		ExternalIP:        "127.0.0.1",
		PortMin:           lo,
		PortMax:           lo + 99,
		StateDir:          t.TempDir(),
		Labels:            map[string]string{hosttest.Label: "true"},
		CheckInterval:     20 * time.Millisecond,
		MaxFinished:       100,
		AppNetwork:        appNet.Network,
		AppBridge:         appNet.Bridge,
		FirewallChain:     appNet.Chain,
		NoFirewall:        !hosttest.Firewall(),
		DiskCheckInterval: 200 * time.Millisecond,
	}
	if _, err := os.Stat(DefaultCABundle); err == nil {
		cfg.CABundle = DefaultCABundle
	}
	if tune != nil {
		tune(&cfg)
	}
	h := &testHost{t: t, cfg: cfg, docker: dc, image: img, reg: &fakeRegistrar{}}
	t.Cleanup(func() {
		h.shutdown()
		h.removeContainers()
	})
	h.start()
	return h
}

func (h *testHost) start() {
	h.t.Helper()
	ctx := context.Background()
	b, err := docker.New(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("HOST_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	d, err := daemon.New(h.cfg, b, h.reg, logger)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		h.t.Fatal(err)
	}
	h.backend, h.d = b, d
	h.srv = httptest.NewServer(Handler(d, testKey, metrics.NewRegistry(), logger))
	h.c = client.New(h.srv.URL, testKey)
	h.shutOnce = sync.Once{}
}

// shutdown stops the daemon and its API; the jobs' containers keep running.
func (h *testHost) shutdown() {
	h.shutOnce.Do(func() {
		h.srv.CloseClientConnections()
		h.srv.Close()
		_ = h.d.Close()
		_ = h.backend.Close()
	})
}

func (h *testHost) containers() []container.Summary {
	h.t.Helper()
	list, err := h.docker.ContainerList(context.Background(), container.ListOptions{
		All: true, Filters: filters.NewArgs(filters.Arg("label", daemon.LabelHostID+"="+h.cfg.HostID)),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return list
}

func (h *testHost) removeContainers() {
	for _, c := range h.containers() {
		_ = h.docker.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
	}
}

func (h *testHost) job(args ...string) *host.Job {
	return &host.Job{ID: h.cfg.HostID + "-" + random.UUID(), Artifact: h.image, Config: host.JobConfig{Args: args}}
}

func (h *testHost) add(j *host.Job) *host.ActiveJob {
	h.t.Helper()
	a, err := h.c.AddJob(ctxT(h.t), j)
	if err != nil {
		h.t.Fatalf("AddJob(%v): %v", j.Config.Args, err)
	}
	return a
}

// waitState polls the job until it is in one of states.
func (h *testHost) waitState(id string, states ...host.JobState) *host.ActiveJob {
	h.t.Helper()
	var a *host.ActiveJob
	poll.UntilNil(h.t, 30*time.Second, fmt.Sprintf("job %s in state %v", id, states), func() error {
		var err error
		if a, err = h.c.GetJob(ctxT(h.t), id); err != nil {
			return err
		}
		if !slices.Contains(states, a.State) {
			return fmt.Errorf("last: %+v", a)
		}
		return nil
	})
	return a
}

// logText returns the job's whole log of one stream.
func (h *testHost) logText(id, stream string) string {
	h.t.Helper()
	s, err := h.c.Log(ctxT(h.t), id, client.LogOptions{Stream: stream})
	if err != nil {
		h.t.Fatal(err)
	}
	defer s.Close()
	var out string
	for {
		l, err := s.Next()
		if err != nil {
			break
		}
		out += l.Data
	}
	return out
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fakeRegistrar records discoverd registrations in order.
type fakeRegistrar struct {
	mu     sync.Mutex
	events []string // "up <service> <addr>" / "down <service> <addr>"
	live   map[string]bool
}

func (f *fakeRegistrar) Register(_ context.Context, service string, inst *discoverd.Instance) (daemon.Registration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := service + " " + inst.Addr
	f.events = append(f.events, "up "+key)
	if f.live == nil {
		f.live = map[string]bool{}
	}
	f.live[key] = true
	return &fakeRegistration{f: f, key: key}, nil
}

func (f *fakeRegistrar) isLive(service, addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live[service+" "+addr]
}

type fakeRegistration struct {
	f   *fakeRegistrar
	key string
}

func (r *fakeRegistration) Deregister(context.Context) error {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	r.f.events = append(r.f.events, "down "+r.key)
	delete(r.f.live, r.key)
	return nil
}
