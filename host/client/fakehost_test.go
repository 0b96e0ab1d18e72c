package client_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/host/server"
	"github.com/openflynn/flynn/pkg/metrics"
)

// exampleHost serves flynn-host's API over a daemon whose containers are
// in memory: the examples need no Docker. stop ends it all.
func exampleHost(hostID string) (url string, stop func()) {
	dir, err := os.MkdirTemp("", "flynn-host-example-")
	if err != nil {
		log.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	// No firewall: the examples change nothing on the machine.
	cfg := daemon.Config{HostID: hostID, StateDir: dir, PortMin: 55000, PortMax: 55009, NoFirewall: true}
	d, err := daemon.New(cfg, newMemBackend(), nil, logger)
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(server.Handler(d, "cluster-key", metrics.NewRegistry(), logger))
	return srv.URL, func() {
		srv.Close()
		_ = d.Close()
		os.RemoveAll(dir)
	}
}

// memBackend runs "containers" that do nothing until a signal or removal
// ends them.
type memBackend struct {
	mu         sync.Mutex
	seq        int
	containers map[string]*memContainer
}

type memContainer struct {
	spec    *daemon.ContainerSpec
	code    int
	exited  chan struct{}
	started time.Time
}

// memContainerMemory is the memory every running container uses; each
// keeps half a CPU busy.
const memContainerMemory = 64 << 20

var _ daemon.Backend = (*memBackend)(nil)

func newMemBackend() *memBackend { return &memBackend{containers: map[string]*memContainer{}} }

// EnsureNetwork has nothing to create: the containers have no network.
func (b *memBackend) EnsureNetwork(context.Context, daemon.AppNetwork) (string, error) {
	return "172.30.0.1", nil
}

// ContainerIP is loopback: nothing listens there, and the examples have no
// service ports.
func (b *memBackend) ContainerIP(context.Context, string) (string, error) { return "127.0.0.1", nil }

// DiskUsage is nothing: the containers write nothing.
func (b *memBackend) DiskUsage(context.Context, string, int64) (int64, error) { return 0, nil }

func (b *memBackend) get(id string) (*memContainer, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.containers[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", daemon.ErrContainerNotFound, id)
	}
	return c, nil
}

func (b *memBackend) Create(_ context.Context, spec *daemon.ContainerSpec) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	id := "c" + strconv.Itoa(b.seq)
	b.containers[id] = &memContainer{spec: spec, exited: make(chan struct{})}
	return id, nil
}

func (b *memBackend) Start(_ context.Context, id string) error {
	c, err := b.get(id)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c.started = time.Now()
	return nil
}

func (b *memBackend) Stats(_ context.Context, id string) (daemon.ContainerStats, error) {
	c, err := b.get(id)
	if err != nil {
		return daemon.ContainerStats{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-c.exited:
		return daemon.ContainerStats{}, fmt.Errorf("%w: %s", daemon.ErrNotRunning, id)
	default:
	}
	now := time.Now()
	return daemon.ContainerStats{Read: now, CPU: now.Sub(c.started) / 2, Memory: memContainerMemory, MemoryLimit: 8 << 30}, nil
}

// exit ends a running container with code.
func (b *memBackend) exit(c *memContainer, code int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-c.exited:
	default:
		c.code = code
		close(c.exited)
	}
}

func (b *memBackend) Signal(_ context.Context, id, _ string) error {
	c, err := b.get(id)
	if err == nil {
		b.exit(c, 0)
	}
	return err
}

func (b *memBackend) Wait(ctx context.Context, id string) (int, error) {
	c, err := b.get(id)
	if err != nil {
		return 0, err
	}
	select {
	case <-c.exited:
		b.mu.Lock()
		defer b.mu.Unlock()
		return c.code, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (b *memBackend) Logs(ctx context.Context, id string, _ time.Time, _ func(host.LogLine) error) error {
	c, err := b.get(id)
	if err != nil {
		return err
	}
	select {
	case <-c.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *memBackend) Remove(_ context.Context, id string) error {
	if c, err := b.get(id); err == nil {
		b.exit(c, 137)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.containers, id)
	return nil
}

func (b *memBackend) List(_ context.Context, labels map[string]string) ([]daemon.Container, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []daemon.Container
next:
	for id, c := range b.containers {
		for k, v := range labels {
			if c.spec.Labels[k] != v {
				continue next
			}
		}
		running := true
		select {
		case <-c.exited:
			running = false
		default:
		}
		out = append(out, daemon.Container{ID: id, Labels: c.spec.Labels, Running: running, ExitCode: c.code})
	}
	return out, nil
}
