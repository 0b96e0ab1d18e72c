package server

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/openflynn/flynn/host/hosttest"
	"github.com/openflynn/flynn/pkg/random"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// BenchmarkStart20Jobs starts 20 jobs through the host API and, in the same
// run, 20 bare `docker run -d` of the same image and command (host network,
// like the jobs), and reports the time ratio (goal ≤ 1.2).
func BenchmarkStart20Jobs(b *testing.B) {
	h := newTestHost(b, nil)
	dockerCLI := testdeps.LookPath(b, "docker")
	const n = 20
	peerLabel := "flynn.bench=" + random.Hex(4)
	removePeers := func() {
		list, _ := h.docker.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", peerLabel))})
		for _, c := range list {
			_ = h.docker.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
		}
	}
	b.Cleanup(removePeers)
	var hostTime, dockerTime time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		for range n {
			h.add(h.job("sleep"))
		}
		hostTime += time.Since(start)

		start = time.Now()
		for range n {
			out, err := exec.Command(dockerCLI, "run", "-d", "--network", "host", "--label", peerLabel, "--label", hosttest.Label+"=true", h.image, "sleep").CombinedOutput()
			if err != nil {
				b.Fatalf("docker run: %v: %s", err, strings.TrimSpace(string(out)))
			}
		}
		dockerTime += time.Since(start)

		b.StopTimer()
		h.removeContainers()
		removePeers()
		b.StartTimer()
	}
	ratio := float64(hostTime) / float64(dockerTime)
	b.ReportMetric(float64(hostTime.Milliseconds())/float64(b.N), "host-ms/20jobs")
	b.ReportMetric(float64(dockerTime.Milliseconds())/float64(b.N), "docker-run-ms/20jobs")
	b.ReportMetric(ratio, "ratio")
	fmt.Printf("start 20 jobs: host API %v, docker run -d %v per round; ratio %.2f (goal <= 1.2)\n",
		hostTime/time.Duration(b.N), dockerTime/time.Duration(b.N), ratio)
}
