package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/host/hosttest"
	"github.com/openflynn/flynn/host/logbuf"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// TestAppJobUpOnlyWhenItListens: an app job's port on the node's address
// may be Docker's userland proxy, which accepts connections at once (with
// dockerd's userland proxy on); the job is up only once the app itself
// listens (here after 3 s), and is then reached there.
func TestAppJobUpOnlyWhenItListens(t *testing.T) {
	h := newTestHost(t, nil)
	j := h.job("serve", "3000")
	j.Config.Ports = []host.Port{{Service: "isolated-web", Proto: "http"}}
	a := h.add(j)
	port := a.Job.Config.Ports[0].Port
	addr := net.JoinHostPort(h.cfg.ExternalIP, strconv.Itoa(port))
	poll.Holds(t, time.Second, "job starting while the app does not listen yet", func() bool {
		a, err := h.c.GetJob(ctxT(t), j.ID)
		return err == nil && a.State == host.StateStarting
	})
	h.waitState(j.ID, host.StateUp)
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("job up but not reachable at %s: %v", addr, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("port=%d\n", port); string(body) != want {
		t.Fatalf("job answered %q, want %q", body, want)
	}
	if !h.reg.isLive("isolated-web", addr) {
		t.Fatalf("job not registered at the node's address %s: %v", addr, h.reg.events)
	}
}

// TestAppJobUnprivileged: an app job runs as the app user (or the non-root
// user it names), cannot bind a low port even in its own namespace, and
// finds the platform's names in its /etc/hosts.
func TestAppJobUnprivileged(t *testing.T) {
	h := newTestHost(t, func(c *daemon.Config) { c.Domain = "flynn.test" })
	tests := []struct {
		name      string
		args      []string
		user      string
		hostNet   bool
		wantState host.JobState
		want      string
	}{
		{name: "app user", args: []string{"whoami"}, wantState: host.StateDown, want: "uid=1000 gid=1000\n"},
		{name: "root asked", args: []string{"whoami"}, user: "root", wantState: host.StateDown, want: "uid=1000 gid=1000\n"},
		{name: "own user", args: []string{"whoami"}, user: "1001:1002", wantState: host.StateDown, want: "uid=1001 gid=1002\n"},
		{name: "host network keeps the image's", args: []string{"whoami"}, hostNet: true, wantState: host.StateDown, want: "uid=0 gid=0\n"},
		{name: "low port", args: []string{"bind", "80"}, wantState: host.StateCrashed, want: "permission denied"},
		{name: "high port", args: []string{"bind", "8080"}, wantState: host.StateDown, want: "bound 8080\n"},
		{name: "platform names", args: []string{"read", "/etc/hosts"}, wantState: host.StateDown, want: "controller.flynn.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := h.job(tt.args...)
			j.Config.User = tt.user
			j.Config.HostNetwork = tt.hostNet
			h.add(j)
			a := h.waitState(j.ID, host.StateDown, host.StateCrashed, host.StateFailed)
			out := h.logText(j.ID, "")
			if a.State != tt.wantState || !strings.Contains(out, tt.want) {
				t.Fatalf("job %s with output %q, want %s with %q", a.State, out, tt.wantState, tt.want)
			}
		})
	}
	j := h.job("read", "/etc/hosts")
	h.add(j)
	h.waitState(j.ID, host.StateDown)
	if out := h.logText(j.ID, ""); !strings.Contains(out, "blobstore.flynn.test") {
		t.Fatalf("/etc/hosts lacks the blobstore: %q", out)
	}
}

// TestAppJobFenced: an app job reaches the node only on the router's
// ports; a service of the node listening on every address (as etcd or the
// host API might) refuses it at once.
func TestAppJobFenced(t *testing.T) {
	if !hosttest.Firewall() {
		testdeps.Missing(t, "iptables as root", errors.New("cannot install firewall rules here"))
	}
	listen := func() (net.Listener, int) {
		ln, err := net.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		return ln, ln.Addr().(*net.TCPAddr).Port
	}
	_, allowed := listen()
	_, blocked := listen()
	h := newTestHost(t, func(c *daemon.Config) { c.RouterPorts = "80,443," + strconv.Itoa(allowed) })

	rules := iptables(t, "-S", h.cfg.FirewallChain)
	for _, want := range []string{
		"-A " + h.cfg.FirewallChain + " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		"-A " + h.cfg.FirewallChain + " -p tcp -m multiport --dports 80,443," + strconv.Itoa(allowed) + " -j ACCEPT",
		"-A " + h.cfg.FirewallChain + " -p tcp -j REJECT --reject-with tcp-reset",
	} {
		if !strings.Contains(rules, want+"\n") {
			t.Errorf("chain lacks %q:\n%s", want, rules)
		}
	}
	if input := iptables(t, "-S", "INPUT"); !strings.Contains(input, "-A INPUT -i "+h.cfg.AppBridge+" -j "+h.cfg.FirewallChain+"\n") {
		t.Errorf("INPUT does not jump to the chain:\n%s", input)
	}

	tests := []struct {
		name      string
		port      int
		wantState host.JobState
		want      string
	}{
		{name: "router port", port: allowed, wantState: host.StateDown, want: "connected to"},
		{name: "other port", port: blocked, wantState: host.StateCrashed, want: "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := h.job("dial-gateway", strconv.Itoa(tt.port))
			h.add(j)
			a := h.waitState(j.ID, host.StateDown, host.StateCrashed)
			out := h.logText(j.ID, "")
			if a.State != tt.wantState || !strings.Contains(out, tt.want) {
				t.Fatalf("job %s with output %q, want %s with %q", a.State, out, tt.wantState, tt.want)
			}
		})
	}
	// A host-network job is not behind the firewall.
	j := h.job("serve")
	j.Config.HostNetwork = true
	j.Config.Ports = []host.Port{{Service: "fenced-test"}}
	h.add(j)
	h.waitState(j.ID, host.StateUp)
}

func iptables(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("iptables %v: %v: %s", args, err, out)
	}
	return string(out)
}

func TestAppJobBindMountRefused(t *testing.T) {
	h := newTestHost(t, nil)
	j := h.job("sleep")
	j.Config.Mounts = []host.Mount{{Source: "data", Target: "/data"}, {Type: host.MountBind, Source: "/etc", Target: "/etc2"}}
	_, err := h.c.AddJob(ctxT(t), j)
	var e *httpjson.Error
	if !errors.As(err, &e) || e.Code != httpjson.CodeValidation || e.Field != "config.mounts[1].type" {
		t.Fatalf("AddJob with a bind mount = %v, want a validation error on config.mounts[1].type", err)
	}
	if n := len(h.containers()); n != 0 {
		t.Fatalf("%d containers after a refused job", n)
	}
}

func TestDiskLimitKillsJob(t *testing.T) {
	h := newTestHost(t, nil)
	j := h.job("fill", "/tmp/big", "32")
	j.Config.Resources.Disk = 8 << 20
	h.add(j)
	a := h.waitState(j.ID, host.StateFailed, host.StateDown, host.StateCrashed)
	if a.State != host.StateFailed || !strings.Contains(a.Error, "disk limit exceeded") {
		t.Fatalf("job writing 32 MiB with a limit of 8 MiB: %s (%q), output %q; want failed for its disk limit", a.State, a.Error, h.logText(j.ID, ""))
	}
	// Under its limit, the same job runs on.
	ok := h.job("fill", "/tmp/small", "2")
	ok.Config.Resources.Disk = 8 << 20
	h.add(ok)
	waitLog(t, h, ok.ID, "sleeping")
	poll.Holds(t, time.Second, "job under its disk limit runs on", func() bool {
		a, err := h.c.GetJob(ctxT(t), ok.ID)
		return err == nil && a.State == host.StateUp
	})
}

// TestLongLineBounded: a job writing 20 MiB without a newline ends up as
// lines of at most 16 KiB, and the daemon (in this process) does not hold
// the line in memory meanwhile.
func TestLongLineBounded(t *testing.T) {
	h := newTestHost(t, nil)
	const size = 20 << 20
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var (
		peak uint64
		wg   sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for ctx.Err() == nil {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	j := h.job("long-line", strconv.Itoa(size))
	h.add(j)
	a := h.waitState(j.ID, host.StateDown, host.StateCrashed)
	stop()
	wg.Wait()
	if a.State != host.StateDown {
		t.Fatalf("job %s", a.State)
	}
	grew := int64(peak) - int64(before.HeapInuse)
	t.Logf("heap in use: %d MiB before, %d MiB at most while the job ran", before.HeapInuse>>20, peak>>20)
	if grew > 12<<20 {
		t.Errorf("heap grew by %d MiB while the job wrote a %d MiB line", grew>>20, size>>20)
	}
	s, err := h.c.Log(ctxT(t), j.ID, client.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lines, total := 0, 0
	for {
		l, err := s.Next()
		if err != nil {
			break
		}
		if len(l.Data) > logbuf.MaxLine || strings.Contains(l.Data, "\n") || strings.Trim(l.Data, "x") != "" {
			t.Fatalf("line %d: %d bytes (%q…), want at most %d bytes of x and no newline", lines, len(l.Data), l.Data[:min(40, len(l.Data))], logbuf.MaxLine)
		}
		lines++
		total += len(l.Data)
	}
	t.Logf("log kept %d lines, %d bytes", lines, total)
	// The job's log keeps its newest few MiB (two segments).
	if lines < 100 || total < 4<<20 {
		t.Fatalf("%d lines, %d bytes kept; want the line's last MiBs in pieces", lines, total)
	}
}

// TestLogFollowsPastAFlood: a job that writes 1 GiB without a newline
// (128 rotations of Docker's log file) and then a line, and runs on, has
// that line in its log: the daemon's follower of Docker's log is not lost
// in the rotations.
func TestLogFollowsPastAFlood(t *testing.T) {
	h := newTestHost(t, nil)
	j := h.job("flood", strconv.Itoa(1<<30))
	h.add(j)
	poll.UntilNil(t, time.Minute, "the line after the flood is in the log", func() error {
		s, err := h.c.Log(ctxT(t), j.ID, client.LogOptions{Tail: 3})
		if err != nil {
			return err
		}
		defer s.Close()
		var last []string
		for {
			l, err := s.Next()
			if err != nil {
				break
			}
			last = append(last, strings.TrimSpace(l.Data[:min(len(l.Data), 40)]))
		}
		if !slices.Contains(last, "flood done") {
			return fmt.Errorf("last lines: %q", last)
		}
		return nil
	})
	if a, err := h.c.GetJob(ctxT(t), j.ID); err != nil || a.State != host.StateUp && a.State != host.StateStarting {
		t.Errorf("job after the flood: %+v, %v; want it running", a, err)
	}
}

// TestAppJobPortTakenOnTheNode: a port of the range that something else on
// the node holds cannot be published; the job is refused as a conflict to
// retry (the next allocation takes other ports), and leaves nothing.
func TestAppJobPortTakenOnTheNode(t *testing.T) {
	h := newTestHost(t, nil)
	ln, err := net.Listen("tcp", net.JoinHostPort(h.cfg.ExternalIP, strconv.Itoa(h.cfg.PortMin)))
	if err != nil {
		t.Skipf("port %d of the test range is taken: %v", h.cfg.PortMin, err)
	}
	defer ln.Close()
	j := h.job("sleep")
	j.Config.Ports = []host.Port{{Port: h.cfg.PortMin}}
	_, err = h.c.AddJob(ctxT(t), j)
	var e *httpjson.Error
	if !errors.As(err, &e) || e.Code != httpjson.CodeConflict || !e.Retry {
		t.Fatalf("AddJob on a taken port = %v, want a conflict to retry", err)
	}
	if n := len(h.containers()); n != 0 {
		t.Fatalf("%d containers after a refused job", n)
	}
	st, _ := h.c.Status(ctxT(t))
	if st.PortsFree != 100 {
		t.Fatalf("ports free = %d, want 100", st.PortsFree)
	}
}
