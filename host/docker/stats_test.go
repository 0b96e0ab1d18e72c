package docker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/host/hosttest"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/random"
)

func TestMemoryInUse(t *testing.T) {
	tests := []struct {
		name string
		m    container.MemoryStats
		want uint64
	}{
		{"cgroup v1", container.MemoryStats{Usage: 100, Stats: map[string]uint64{"total_inactive_file": 30, "inactive_file": 10}}, 70},
		{"cgroup v2", container.MemoryStats{Usage: 100, Stats: map[string]uint64{"inactive_file": 40}}, 60},
		{"cache above usage", container.MemoryStats{Usage: 100, Stats: map[string]uint64{"total_inactive_file": 300, "inactive_file": 300}}, 100},
		{"no breakdown", container.MemoryStats{Usage: 100}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := memoryInUse(tt.m); got != tt.want {
				t.Errorf("memoryInUse = %d, want %d", got, tt.want)
			}
		})
	}
}

// Stats reads a real container: a job holding 32 MiB and keeping a CPU
// busy shows them, its limit, and CPU time growing about as fast as the
// clock; one that stopped, or is gone, has none.
func TestStats(t *testing.T) {
	dc := hosttest.Docker(t)
	img := hosttest.Build(t, dc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	id, err := b.Create(ctx, &daemon.ContainerSpec{
		Name:      "flynn-stats-test-" + random.Hex(4),
		Image:     img,
		Cmd:       []string{"spin", "32"},
		Labels:    map[string]string{hosttest.Label: "true"},
		Resources: host.Resources{Memory: 256 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Remove(context.Background(), id) }()
	if err := b.Start(ctx, id); err != nil {
		t.Fatal(err)
	}

	var first daemon.ContainerStats
	poll.UntilNil(t, 30*time.Second, "the job holding 32 MiB", func() error {
		if first, err = b.Stats(ctx, id); err != nil {
			return err
		}
		if first.Memory < 32<<20 || first.Memory > 200<<20 {
			return fmt.Errorf("memory %d", first.Memory)
		}
		return nil
	})
	if first.MemoryLimit != 256<<20 || time.Since(first.Read) > time.Minute || first.CPU <= 0 {
		t.Errorf("stats = %+v; want limit 256 MiB, a recent reading, CPU time", first)
	}
	var later daemon.ContainerStats
	poll.UntilNil(t, 30*time.Second, "a reading a second later", func() error {
		if later, err = b.Stats(ctx, id); err != nil {
			return err
		}
		if later.Read.Sub(first.Read) < time.Second {
			return fmt.Errorf("read %s after the first", later.Read.Sub(first.Read))
		}
		return nil
	})
	// A busy loop keeps a CPU busy, but a loaded machine (a CI runner
	// running every package's tests) may give it a small share of one.
	if rate := float64(later.CPU-first.CPU) / float64(later.Read.Sub(first.Read)); rate < 0.02 || rate > 1.5 {
		t.Errorf("CPU time grew %.2f times as fast as the clock; want up to 1", rate)
	}

	if err := b.Signal(ctx, id, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Wait(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stats(ctx, id); !errors.Is(err, daemon.ErrNotRunning) {
		t.Errorf("stats of a stopped container: %v, want ErrNotRunning", err)
	}
	if err := b.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stats(ctx, id); !errors.Is(err, daemon.ErrContainerNotFound) {
		t.Errorf("stats of a removed container: %v, want ErrContainerNotFound", err)
	}
}
