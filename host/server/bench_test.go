package server

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/hosttest"
	"github.com/openflynn/flynn/pkg/random"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// BenchmarkStart20Jobs starts 20 jobs with a port each through the host
// API and, in the same run, 20 bare `docker run -d` of the same image and
// command shaped alike (on the host network; or on the app network with
// the port published), and reports the time ratio (goal ≤ 1.2).
func BenchmarkStart20Jobs(b *testing.B) {
	for _, hostNet := range []bool{false, true} {
		name := "app"
		if hostNet {
			name = "host-network"
		}
		b.Run(name, func(b *testing.B) { benchStart(b, hostNet) })
	}
}

func benchStart(b *testing.B, hostNet bool) {
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
			j := h.job("sleep")
			j.Config.HostNetwork = hostNet
			j.Config.Ports = []host.Port{{}}
			h.add(j)
		}
		hostTime += time.Since(start)

		b.StopTimer()
		ports := freePorts(b, n)
		b.StartTimer()
		start = time.Now()
		for i := range n {
			args := []string{"run", "-d", "--label", peerLabel, "--label", hosttest.Label + "=true", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"}
			if hostNet {
				args = append(args, "--network", "host")
			} else {
				p := strconv.Itoa(ports[i])
				args = append(args, "--network", h.cfg.AppNetwork, "--user", "1000:1000", "-p", "127.0.0.1:"+p+":"+p)
			}
			out, err := exec.Command(dockerCLI, append(args, h.image, "sleep")...).CombinedOutput()
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
	fmt.Printf("%s: start 20 jobs: host API %v, docker run -d %v per round; ratio %.2f (goal <= 1.2)\n",
		b.Name(), hostTime/time.Duration(b.N), dockerTime/time.Duration(b.N), ratio)
}

// BenchmarkJobUp measures one web job's time from AddJob to up (its port
// answers), on the app network and on the host network.
func BenchmarkJobUp(b *testing.B) {
	for _, hostNet := range []bool{false, true} {
		name := "app"
		if hostNet {
			name = "host-network"
		}
		b.Run(name, func(b *testing.B) {
			h := newTestHost(b, nil)
			var total time.Duration
			b.ResetTimer()
			for range b.N {
				j := h.job("serve")
				j.Config.HostNetwork = hostNet
				j.Config.Ports = []host.Port{{Service: "bench-up"}}
				start := time.Now()
				h.add(j)
				h.waitState(j.ID, host.StateUp)
				total += time.Since(start)
				b.StopTimer()
				if _, err := h.c.StopJob(ctxT(b), j.ID); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-up")
		})
	}
}

// freePorts returns n ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out
}
