package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/poll"
)

func TestStartSetsUpAppNetworkAndFirewall(t *testing.T) {
	h := newHarness(t, 40000, 40009)
	setup := func() []string {
		var out []string
		for _, e := range h.trail.list() {
			if strings.HasPrefix(e, "create network ") || strings.HasPrefix(e, "firewall ") {
				out = append(out, e)
			}
		}
		return out
	}
	want := []string{
		"create network flynn-apps flynnapps0",
		"firewall iptables-restore -w --noflush",
		"firewall iptables -w -C INPUT -i flynnapps0 -j FLYNN-APPS",
		// The fake says the forward chain exists: it is kept as it is.
		"firewall iptables -w -S FLYNN-APPS-FWD",
		"firewall iptables -w -C DOCKER-USER -i flynnapps0 -j FLYNN-APPS-FWD",
	}
	if got := setup(); !slices.Equal(got, want) {
		t.Fatalf("setup on start = %q, want %q", got, want)
	}
	// A second daemon finds the network and installs the same rules again.
	_ = h.d.Close()
	h.start()
	want = append(want, want[1:]...)
	if got := setup(); !slices.Equal(got, want) {
		t.Fatalf("setup after a restart = %q, want %q", got, want)
	}
}

func TestStartFirewallOptions(t *testing.T) {
	tests := []struct {
		name    string
		tune    func(*Config)
		wantErr string
		want    string // a trail entry
		wantNot string
	}{
		{name: "off", tune: func(c *Config) { c.NoFirewall = true }, wantNot: "firewall "},
		{name: "own names", tune: func(c *Config) {
			c.AppNetwork, c.AppBridge, c.FirewallChain = "apps-t1", "fat1", "FLYNN-T1"
		}, want: "firewall iptables -w -C INPUT -i fat1 -j FLYNN-T1"},
		{name: "iptables missing", tune: func(c *Config) { c.IPTables = fakeIPTables{trail: &trail{}, fail: errors.New("exec: not found")} },
			wantErr: "--firewall=false"},
		{name: "bad router ports", tune: func(c *Config) { c.RouterPorts = "80,x" }, wantErr: `"x" is not a port`},
		{name: "root app user", tune: func(c *Config) { c.AppUser = "0:0" }, wantErr: "non-root"},
		{name: "bridge name too long", tune: func(c *Config) { c.AppBridge = "a-very-long-bridge0" }, wantErr: "15 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &trail{}
			cfg := Config{HostID: "h1", StateDir: t.TempDir(), IPTables: fakeIPTables{trail: tr}}
			tt.tune(&cfg)
			d, err := New(cfg, newFakeBackend(tr), nil, discard())
			if err == nil {
				err = d.Start(context.Background())
				defer d.Close()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New+Start = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(tr.list(), "\n")
			if tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("trail lacks %q:\n%s", tt.want, got)
			}
			if tt.wantNot != "" && strings.Contains(got, tt.wantNot) {
				t.Errorf("trail has %q:\n%s", tt.wantNot, got)
			}
		})
	}
}

func TestContainerSpecOfAppAndHostJobs(t *testing.T) {
	h := newHarness(t, 40000, 40019, func(h *harness) {
		h.cfg.ExternalIP = "10.0.0.5"
		h.cfg.Domain = "example.test"
	})
	users := []struct{ given, want string }{
		{"", "1000:1000"}, {"0", "1000:1000"}, {"root", "1000:1000"}, {"0:0", "1000:1000"}, {"root:root", "1000:1000"},
		{"1001:1001", "1001:1001"}, {"app", "app"}, {"1002", "1002"},
	}
	for i, u := range users {
		t.Run("app user "+strconv.Quote(u.given), func(t *testing.T) {
			j := testJob(fmt.Sprintf("h1-app%d", i), "sleep")
			j.Config.User = u.given
			j.Config.Ports = []host.Port{{}, {Proto: "http"}}
			j.Config.Resources = host.Resources{Memory: 64 << 20, Pids: 50}
			a, err := h.d.AddJob(context.Background(), j)
			if err != nil {
				t.Fatal(err)
			}
			s := h.backend.spec("flynn-" + j.ID)
			if s.User != u.want {
				t.Errorf("user = %q, want %q", s.User, u.want)
			}
			if len(s.CapAdd) != 0 {
				t.Errorf("app job keeps capabilities %v, want none", s.CapAdd)
			}
			if s.Network != "flynn-apps" || s.PublishIP != "10.0.0.5" {
				t.Errorf("network %q published on %q, want flynn-apps on 10.0.0.5", s.Network, s.PublishIP)
			}
			var want []PublishedPort
			for _, p := range a.Job.Config.Ports {
				want = append(want, PublishedPort{Port: p.Port, Proto: "tcp"})
			}
			if !slices.Equal(s.Publish, want) {
				t.Errorf("published %v, want %v (host port = container port, tcp)", s.Publish, want)
			}
			if wantHosts := []string{"controller.example.test:" + fakeGateway, "blobstore.example.test:" + fakeGateway,
				"postgres.example.test:" + fakeGateway, "redis.example.test:" + fakeGateway}; !slices.Equal(s.ExtraHosts, wantHosts) {
				t.Errorf("extra hosts %v, want %v", s.ExtraHosts, wantHosts)
			}
			if s.Sysctls["net.ipv4.ip_unprivileged_port_start"] != "1024" {
				t.Errorf("sysctls %v: low ports are not privileged", s.Sysctls)
			}
			if s.Resources.Memory != 64<<20 || s.Resources.Pids != 50 {
				t.Errorf("resources %+v, want the job's", s.Resources)
			}
			if !slices.Contains(s.Env, "EXTERNAL_IP=10.0.0.5") || !slices.Contains(s.Env, "FLYNN_EXTERNAL_IP=10.0.0.5") {
				t.Errorf("env %v lacks the node's address", s.Env)
			}
		})
	}
	t.Run("host network", func(t *testing.T) {
		j := testJob("h1-sys", "sleep")
		j.Config.HostNetwork = true
		j.Config.Ports = []host.Port{{}}
		if _, err := h.d.AddJob(context.Background(), j); err != nil {
			t.Fatal(err)
		}
		s := h.backend.spec("flynn-" + j.ID)
		if s.User != "" || s.Network != "" || len(s.Publish) != 0 || len(s.ExtraHosts) != 0 || len(s.Sysctls) != 0 {
			t.Errorf("host-network spec %+v, want today's: the image's user, no network, nothing published", s)
		}
		if !slices.Contains(s.CapAdd, "NET_BIND_SERVICE") {
			t.Errorf("host-network job capabilities %v, want the system set", s.CapAdd)
		}
	})
}

func TestAppJobsMountNoHostPath(t *testing.T) {
	bundle := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(bundle, []byte("CA"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, 40000, 40009, func(h *harness) { h.cfg.CABundle = bundle })
	j := testJob("h1-bind", "sleep")
	j.Config.Mounts = []host.Mount{{Source: "data", Target: "/data"}, {Source: "/etc", Target: "/host-etc", ReadOnly: true}}
	_, err := h.d.AddJob(context.Background(), j)
	var e *httpjson.Error
	if !errors.As(err, &e) || e.Code != httpjson.CodeValidation || e.Field != "config.mounts[1].type" {
		t.Fatalf("AddJob with a bind mount = %#v, want a validation error on config.mounts[1].type", err)
	}
	if all, _ := h.backend.count(); all != 0 {
		t.Fatalf("%d containers after a refused job", all)
	}
	j.Config.Mounts = j.Config.Mounts[:1]
	if _, err := h.d.AddJob(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	got := h.backend.spec("flynn-" + j.ID).Binds
	want := []Bind{
		{Source: filepath.Join(h.cfg.StateDir, "app-volumes", "data"), Target: "/data"},
		{Source: bundle, Target: bundle, ReadOnly: true},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("binds = %+v, want %+v (the app's volume and the read-only CA bundle)", got, want)
	}
}

func TestAppVolumesOwnedByTheJobsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	h := newHarness(t, 40000, 40009)
	apps := filepath.Join(h.cfg.StateDir, "app-volumes")
	mkdir := func(name string, uid int) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(apps, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(apps, name), uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	mkdir("was-root", 0)
	mkdir("other-user", 1005)
	if err := os.Symlink("/etc", filepath.Join(apps, "link")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, volume, user string
		hostNetwork        bool
		wantUID, wantGID   uint32
		wantDir            string
		wantErr            bool
	}{
		{name: "new", volume: "fresh", wantUID: 1000, wantGID: 1000},
		{name: "explicit user", volume: "fresh2", user: "1001:1002", wantUID: 1001, wantGID: 1002},
		{name: "root-owned from before", volume: "was-root", wantUID: 1000, wantGID: 1000},
		{name: "another user's", volume: "other-user", wantUID: 1005, wantGID: 1005},
		{name: "named user", volume: "named", user: "app", wantUID: 0, wantGID: 0},
		{name: "symlink", volume: "link", wantErr: true},
		{name: "host network", volume: "sys", hostNetwork: true, wantUID: 0, wantGID: 0, wantDir: "volumes"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := testJob(fmt.Sprintf("h1-vol%d", i), "sleep")
			j.Config.User = tt.user
			j.Config.HostNetwork = tt.hostNetwork
			j.Config.Mounts = []host.Mount{{Source: tt.volume, Target: "/data"}}
			_, err := h.d.AddJob(context.Background(), j)
			if tt.wantErr {
				if err == nil {
					t.Fatal("AddJob succeeded")
				}
				if st, _ := os.Stat("/etc"); st.Sys().(*syscall.Stat_t).Uid != 0 {
					t.Fatal("/etc changed owner through the symlink")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(h.cfg.StateDir, "app-volumes", tt.volume)
			if tt.wantDir != "" {
				dir = filepath.Join(h.cfg.StateDir, tt.wantDir, tt.volume)
			}
			st, err := os.Lstat(dir)
			if err != nil {
				t.Fatal(err)
			}
			sys := st.Sys().(*syscall.Stat_t)
			if sys.Uid != tt.wantUID || sys.Gid != tt.wantGID {
				t.Fatalf("volume owned by %d:%d, want %d:%d", sys.Uid, sys.Gid, tt.wantUID, tt.wantGID)
			}
		})
	}
}

// TestReadinessDialsTheContainer: an app job's published port answers on
// the node's address (Docker's proxy) before the app listens; the job is
// up only once its own address answers, and is registered at the node's.
func TestReadinessDialsTheContainer(t *testing.T) {
	port := freePort(t)
	h := newHarness(t, port, port, func(h *harness) {
		h.cfg.ExternalIP = "127.0.0.2"
		h.backend.appIP = "127.0.0.3"
	})
	proxy, err := net.Listen("tcp", net.JoinHostPort("127.0.0.2", strconv.Itoa(port)))
	if err != nil {
		t.Skipf("no 127.0.0.2 on this machine: %v", err)
	}
	defer proxy.Close()
	j := testJob("h1-web", "sleep")
	j.Config.Ports = []host.Port{{Service: "web"}}
	if _, err := h.d.AddJob(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	poll.Holds(t, 150*time.Millisecond, "job starting while only the node's address answers", func() bool {
		a, err := h.d.Job(j.ID)
		return err == nil && a.State == host.StateStarting
	})
	app, err := net.Listen("tcp", net.JoinHostPort("127.0.0.3", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	h.waitState(j.ID, host.StateUp)
	if want := "register web 127.0.0.2:" + strconv.Itoa(port); !slices.Contains(h.trail.list(), want) {
		t.Fatalf("trail %v lacks %q", h.trail.list(), want)
	}
}

func TestDiskLimit(t *testing.T) {
	h := newHarness(t, 40000, 40009, func(h *harness) { h.cfg.DiskCheckInterval = 5 * time.Millisecond })
	ctx := context.Background()

	free := testJob("h1-nolimit", "sleep")
	if _, err := h.d.AddJob(ctx, free); err != nil {
		t.Fatal(err)
	}
	j := testJob("h1-disk", "sleep")
	j.Config.Resources.Disk = 1000
	if _, err := h.d.AddJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	h.backend.setDisk("flynn-"+j.ID, 1000)
	h.backend.setDisk("flynn-"+free.ID, 1<<40)
	poll.Holds(t, 50*time.Millisecond, "job at its limit runs on", func() bool {
		a, err := h.d.Job(j.ID)
		return err == nil && !a.State.Terminal()
	})
	h.backend.setDisk("flynn-"+j.ID, 1001)
	a := h.waitState(j.ID, host.StateFailed)
	if !strings.Contains(a.Error, "disk limit exceeded") || !strings.Contains(a.Error, "limit 1000") {
		t.Fatalf("error = %q, want it to say the disk limit of 1000 was exceeded", a.Error)
	}
	if !slices.Contains(h.jobTrail(), "signal SIGKILL") {
		t.Fatalf("trail %v: not killed", h.jobTrail())
	}
	if a, _ := h.d.Job(free.ID); a.State.Terminal() {
		t.Fatalf("job without a disk limit ended: %+v", a)
	}
	// Only the limited job was ever measured: jobs without a limit cost nothing.
	if n := h.backend.diskCalls("flynn-" + free.ID); n != 0 {
		t.Fatalf("job without a disk limit measured %d times", n)
	}
	before := h.backend.diskCalls("flynn-" + j.ID)
	poll.Holds(t, 30*time.Millisecond, "no measurements once the limited job ended", func() bool {
		return h.backend.diskCalls("flynn-"+j.ID) == before
	})
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestAdoptedHostNetworkContainerStaysSo: a container started before app
// jobs had a network of their own (on the host network, its job without
// HostNetwork) is adopted as a host-network job, so it is checked, and
// revived, as it runs.
func TestAdoptedHostNetworkContainerStaysSo(t *testing.T) {
	h := newHarness(t, 40000, 40009)
	j := testJob("h1-old", "sleep")
	j.Config.Persistent = true
	if _, err := h.d.AddJob(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	h.waitState(j.ID, host.StateUp)
	_ = h.d.Close()
	h.backend.mu.Lock()
	for _, c := range h.backend.containers {
		c.spec.Network = "" // as the daemon before this one made it
	}
	h.backend.mu.Unlock()
	h.start()
	a := h.waitState(j.ID, host.StateUp)
	if !a.Job.Config.HostNetwork {
		t.Fatal("adopted host-network container's job is not HostNetwork")
	}
}
