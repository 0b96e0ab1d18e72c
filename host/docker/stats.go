package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/openflynn/flynn/host/daemon"
)

// Stats reads the container's CPU and memory use with a one-shot stats
// call (stream=false, one-shot=true). One-shot skips the second reading
// Docker otherwise takes to fill precpu_stats, which it leaves empty: the
// daemon computes CPU rates from its own readings instead. Docker 20.10
// still answers a one-shot call only at its stats collector's next tick
// (once a second, at once when the collector was idle), but every call
// waiting then is answered by the same tick, so reading many containers
// at once costs about a second, not a second each.
func (b *Backend) Stats(ctx context.Context, id string) (daemon.ContainerStats, error) {
	resp, err := b.c.ContainerStatsOneShot(ctx, id)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return daemon.ContainerStats{}, fmt.Errorf("%w: %s", daemon.ErrContainerNotFound, id)
		}
		return daemon.ContainerStats{}, fmt.Errorf("container stats: %w", err)
	}
	defer resp.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return daemon.ContainerStats{}, fmt.Errorf("decode container stats: %w", err)
	}
	// A container that does not run gets a reading of zeros, taken at
	// no time.
	if s.Read.IsZero() {
		return daemon.ContainerStats{}, fmt.Errorf("%w: %s", daemon.ErrNotRunning, id)
	}
	return daemon.ContainerStats{
		Read:        s.Read,
		CPU:         time.Duration(s.CPUStats.CPUUsage.TotalUsage),
		Memory:      memoryInUse(s.MemoryStats),
		MemoryLimit: s.MemoryStats.Limit,
	}, nil
}

// memoryInUse is the container's memory without its inactive file cache,
// which the kernel reclaims under pressure: what `docker stats` shows.
// cgroup v1 reports the cache as total_inactive_file, v2 as
// inactive_file.
func memoryInUse(m container.MemoryStats) uint64 {
	if v, ok := m.Stats["total_inactive_file"]; ok && v < m.Usage {
		return m.Usage - v
	}
	if v := m.Stats["inactive_file"]; v < m.Usage {
		return m.Usage - v
	}
	return m.Usage
}
