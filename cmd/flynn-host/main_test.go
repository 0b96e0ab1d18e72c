package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/host/hosttest"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/random"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// TestDaemonCLIAndDiscoverd runs the real flynn-host binary against a real
// discoverd: the host registers itself, `run` attaches and returns the
// job's status, `ps` lists, and when the daemon is killed (no chance to
// deregister) its registration expires.
func TestDaemonCLIAndDiscoverd(t *testing.T) {
	dc := hosttest.Docker(t)
	img := hosttest.Build(t, dc)
	appNet := hosttest.NewAppNetwork(t, dc) // not a cluster's flynn-apps; removed at the end
	goBin := testdeps.LookPath(t, "go")
	disc := discoverdtest.New(t, discoverdtest.Options{})

	bin := filepath.Join(t.TempDir(), "flynn-host")
	build := exec.Command(goBin, "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build flynn-host: %v\n%s", err, out)
	}
	addr, err := discoverdtest.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	hostID := "cli" + random.Hex(4)
	t.Cleanup(func() {
		list, _ := dc.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", daemon.LabelHostID+"="+hostID))})
		for _, c := range list {
			_ = dc.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
		}
	})
	var daemonLog bytes.Buffer
	d := exec.Command(bin, "daemon", "--host-id", hostID, "--http-addr", addr, "--external-ip", "127.0.0.1",
		"--port-range", "19100-19199", "--state-dir", t.TempDir(), "--discoverd-url", disc.URL, "--discoverd-ttl", "2s",
		"--app-network", appNet.Network, "--app-bridge", appNet.Bridge, "--firewall-chain", appNet.Chain,
		"--firewall="+strconv.FormatBool(hosttest.Firewall()))
	d.Env = append(os.Environ(), "FLYNN_CLUSTER_KEY=k")
	d.Stdout, d.Stderr = &daemonLog, &daemonLog
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = d.Process.Kill()
			_ = d.Wait()
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", daemonLog.String())
		}
	})

	dcl := client.New(disc.URL, "")
	_, port, _ := net.SplitHostPort(addr)
	wantAddr := "127.0.0.1:" + port
	registered := func() bool {
		insts, err := dcl.Instances(context.Background(), "flynn-host")
		if err != nil {
			return false
		}
		for _, in := range insts {
			if in.Addr == wantAddr && in.Meta["id"] == hostID {
				return true
			}
		}
		return false
	}
	poll.Until(t, 20*time.Second, "host registered in discoverd", registered)

	cli := func(args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"--host", "http://" + addr, "--key", "k"}, args...)...)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("flynn-host %v: %v", args, err)
		}
		return string(out), 0
	}
	if out, code := cli("run", img, "echo", "from", "run"); code != 0 || out != "from run\n" {
		t.Fatalf("run echo: %q exit %d, want %q exit 0", out, code, "from run\n")
	}
	if out, code := cli("run", img, "exit", "7"); code != 7 || !strings.Contains(out, "exiting with 7") {
		t.Fatalf("run exit 7: %q exit %d, want exit 7", out, code)
	}
	if out, code := cli("run", "flynn-no-such-image", "x"); code != 1 || !strings.Contains(out, "not on this host") {
		t.Fatalf("run of an unknown image: %q exit %d", out, code)
	}
	if out, code := cli("ps", "-a"); code != 0 || strings.Count(out, hostID+"-") != 2 {
		t.Fatalf("ps -a: %q exit %d, want the two finished jobs", out, code)
	}
	if out, code := cli("--key", "wrong", "ps"); code != 1 || !strings.Contains(out, "unauthorized") {
		t.Fatalf("ps with a wrong key: %q exit %d", out, code)
	}

	// Killed, the daemon cannot deregister: the TTL must expire it.
	if err := d.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = d.Wait()
	killed = true
	if !registered() {
		t.Fatal("registration vanished at once; it should live until its TTL")
	}
	poll.Until(t, 15*time.Second, "host registration expired", func() bool { return !registered() })
}
