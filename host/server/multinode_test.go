package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	dockerclient "github.com/docker/docker/client"

	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/host/firewall"
	"github.com/openflynn/flynn/host/hosttest"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/random"
)

// testNode is a whole flynn-host (Run: Docker backend, registrar, API) on
// an address of its own, as one node of several on one machine.
type testNode struct {
	cfg    Config
	appNet hosttest.AppNetwork
	c      *client.Client
	stop   func()
}

// startNode runs a daemon on ip with ports [lo, lo+99], registering
// through urls with own as its own discoverd.
func startNode(t *testing.T, dc *dockerclient.Client, ip string, lo int, own string, urls []string) *testNode {
	t.Helper()
	appNet := hosttest.NewAppNetwork(t, dc) // its cleanup runs last
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	n := &testNode{appNet: appNet, cfg: Config{
		Listen:        addr,
		ClusterKey:    testKey,
		DiscoverdURLs: urls,
		DiscoverdTTL:  2 * time.Second,
		Daemon: daemon.Config{
			HostID:        "mn" + random.Hex(4),
			ExternalIP:    ip,
			DiscoverdURL:  own,
			PortMin:       lo,
			PortMax:       lo + 99,
			StateDir:      t.TempDir(),
			Labels:        map[string]string{hosttest.Label: "true"},
			CheckInterval: 20 * time.Millisecond,
			AppNetwork:    appNet.Network,
			AppBridge:     appNet.Bridge,
			FirewallChain: appNet.Chain,
			NoFirewall:    !hosttest.Firewall(),
		},
	}}
	t.Cleanup(func() { // after the daemon stopped
		ctx := context.Background()
		list, _ := dc.ContainerList(ctx, container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", daemon.LabelHostID+"="+n.cfg.Daemon.HostID))})
		for _, c := range list {
			_ = dc.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		}
	})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("HOST_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("node", ip)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, n.cfg, logger) }()
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("node %s: %v", ip, err)
			}
		})
	}
	t.Cleanup(n.stop)
	n.c = client.New("http://"+addr, testKey)
	poll.UntilNil(t, 30*time.Second, "node "+ip+" answers", func() error {
		select {
		case err := <-done:
			t.Fatalf("node %s ended: %v", ip, err)
		default:
		}
		_, err := n.c.Status(ctxT(t))
		return err
	})
	return n
}

// gateway returns the node's app network gateway as Docker has it.
func (n *testNode) gateway(t *testing.T, dc *dockerclient.Client) string {
	t.Helper()
	info, err := dc.NetworkInspect(context.Background(), n.appNet.Network, network.InspectOptions{})
	if err != nil || len(info.IPAM.Config) == 0 {
		t.Fatalf("inspect %s: %v %+v", n.appNet.Network, err, info.IPAM)
	}
	return info.IPAM.Config[0].Gateway
}

// run adds a job and waits for it to reach one of states.
func (n *testNode) run(t *testing.T, j *host.Job, states ...host.JobState) *host.ActiveJob {
	t.Helper()
	if _, err := n.c.AddJob(ctxT(t), j); err != nil {
		t.Fatalf("AddJob on %s: %v", n.cfg.Daemon.ExternalIP, err)
	}
	var a *host.ActiveJob
	poll.UntilNil(t, 30*time.Second, fmt.Sprintf("job %s in %v", j.ID, states), func() error {
		var err error
		if a, err = n.c.GetJob(ctxT(t), j.ID); err != nil {
			return err
		}
		for _, s := range states {
			if a.State == s {
				return nil
			}
		}
		return fmt.Errorf("state %s", a.State)
	})
	return a
}

func (n *testNode) output(t *testing.T, id string) string {
	t.Helper()
	s, err := n.c.Log(ctxT(t), id, client.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var b strings.Builder
	for {
		l, err := s.Next()
		if err != nil {
			return b.String()
		}
		b.WriteString(l.Data)
	}
}

// registered reports whether d lists an instance of service at addr.
func registered(d *discoverdclient.Client, service, addr string) bool {
	insts, err := d.Instances(context.Background(), service)
	if err != nil {
		return false
	}
	for _, in := range insts {
		if in.Addr == addr {
			return true
		}
	}
	return false
}

// TestTwoNodesOnOneMachine runs two daemons side by side on one Docker
// engine, on 127.0.0.1 and 127.0.0.2, as `make cluster NODES=2` does:
// each with its own app network, ports and jobs; jobs learn their node;
// the second registers through the first's discoverd until its own
// answers, then in its own, and back when its own goes; and (as root)
// each fences its app jobs off the other node.
func TestTwoNodesOnOneMachine(t *testing.T) {
	dc := hosttest.Docker(t)
	img := hosttest.Build(t, dc)
	discA := discoverdtest.New(t, discoverdtest.Options{Key: testKey})
	ownB := "http://" + freeAddrOn(t, "127.0.0.2") // node B's discoverd: not running yet
	lo := 20000 + rand.IntN(50)*200
	a := startNode(t, dc, "127.0.0.1", lo, discA.URL, []string{discA.URL})
	b := startNode(t, dc, "127.0.0.2", lo+100, ownB, []string{ownB, discA.URL})
	dA := discA.Client()

	hostAddr := func(n *testNode) string { return n.cfg.Listen }
	poll.Until(t, 20*time.Second, "both hosts registered in node A's discoverd", func() bool {
		return registered(dA, "flynn-host", hostAddr(a)) && registered(dA, "flynn-host", hostAddr(b))
	})

	t.Run("jobs learn their node", func(t *testing.T) {
		tests := []struct {
			node *testNode
			want string
		}{
			{a, fmt.Sprintf("FLYNN_DISCOVERD_URL=%s\nFLYNN_JOIN=\nFLYNN_APP_GATEWAY=%s\nEXTERNAL_IP=127.0.0.1\n", discA.URL, a.gateway(t, dc))},
			{b, fmt.Sprintf("FLYNN_DISCOVERD_URL=%s\nFLYNN_JOIN=%s\nFLYNN_APP_GATEWAY=%s\nEXTERNAL_IP=127.0.0.2\n", ownB, discA.URL, b.gateway(t, dc))},
		}
		for _, tt := range tests {
			for _, hostNet := range []bool{false, true} {
				j := &host.Job{ID: tt.node.cfg.Daemon.HostID + "-" + random.UUID(), Artifact: img,
					Config: host.JobConfig{HostNetwork: hostNet, Args: []string{"env", "FLYNN_DISCOVERD_URL", "FLYNN_JOIN", "FLYNN_APP_GATEWAY", "EXTERNAL_IP"}}}
				tt.node.run(t, j, host.StateDown, host.StateCrashed)
				if got := tt.node.output(t, j.ID); got != tt.want {
					t.Errorf("node %s, host network %v: env\n%s\nwant\n%s", tt.node.cfg.Daemon.ExternalIP, hostNet, got, tt.want)
				}
			}
		}
		if a.gateway(t, dc) == b.gateway(t, dc) {
			t.Errorf("both app networks have gateway %s", a.gateway(t, dc))
		}
	})

	// A web app on each node, each on its own address only.
	webs := map[*testNode]string{}
	for _, n := range []*testNode{a, b} {
		j := &host.Job{ID: n.cfg.Daemon.HostID + "-" + random.UUID(), Artifact: img,
			Config: host.JobConfig{Args: []string{"serve"}, Ports: []host.Port{{Service: "two-nodes-web", Proto: "http", CheckPath: "/"}}}}
		got := n.run(t, j, host.StateUp)
		port := got.Job.Config.Ports[0].Port
		webs[n] = net.JoinHostPort(n.cfg.Daemon.ExternalIP, strconv.Itoa(port))
		resp, err := http.Get("http://" + webs[n] + "/")
		if err != nil {
			t.Fatalf("web job of node %s not reached at %s: %v", n.cfg.Daemon.ExternalIP, webs[n], err)
		}
		resp.Body.Close()
		other := map[*testNode]string{a: "127.0.0.2", b: "127.0.0.1"}[n]
		if conn, err := net.DialTimeout("tcp", net.JoinHostPort(other, strconv.Itoa(port)), time.Second); err == nil {
			conn.Close()
			t.Errorf("web job of node %s answers on the other node's address too", n.cfg.Daemon.ExternalIP)
		}
		jobs, err := n.c.ListJobs(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if j.HostID != n.cfg.Daemon.HostID || !strings.HasPrefix(j.Job.ID, n.cfg.Daemon.HostID+"-") {
				t.Errorf("node %s lists job %s of host %s", n.cfg.Daemon.ExternalIP, j.Job.ID, j.HostID)
			}
		}
	}
	poll.Until(t, 20*time.Second, "both web jobs registered in node A's discoverd", func() bool {
		return registered(dA, "two-nodes-web", webs[a]) && registered(dA, "two-nodes-web", webs[b])
	})

	if hosttest.Firewall() {
		t.Run("each node fenced off the other", func(t *testing.T) {
			for _, tt := range []struct {
				node *testNode
				peer string
			}{{a, "127.0.0.2"}, {b, "127.0.0.1"}} {
				waitForwardRules(t, tt.node, tt.peer)
			}
		})
	}

	// Node B's own discoverd comes up: B moves there, and stops
	// heartbeating in A's, where its registrations expire.
	discB, err := discoverdtest.Start(discoverdtest.Options{Key: testKey, HTTPAddr: strings.TrimPrefix(ownB, "http://"), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var stopB sync.Once
	t.Cleanup(func() { stopB.Do(discB.Stop) })
	dB := discB.Client()
	poll.Until(t, 30*time.Second, "node B and its job registered in its own discoverd", func() bool {
		return registered(dB, "flynn-host", hostAddr(b)) && registered(dB, "two-nodes-web", webs[b])
	})
	poll.Until(t, 20*time.Second, "node B's registrations expired in node A's discoverd", func() bool {
		return !registered(dA, "flynn-host", hostAddr(b)) && !registered(dA, "two-nodes-web", webs[b])
	})
	if !registered(dA, "flynn-host", hostAddr(a)) {
		t.Fatal("node A left its own discoverd")
	}

	// Node B's discoverd goes away: B registers in A's again, and keeps
	// heartbeating there.
	stopB.Do(discB.Stop)
	poll.Until(t, 30*time.Second, "node B and its job back in node A's discoverd", func() bool {
		return registered(dA, "flynn-host", hostAddr(b)) && registered(dA, "two-nodes-web", webs[b])
	})
	poll.Holds(t, 3*time.Second, "node B's registrations outlive their TTL (heartbeats go on)", func() bool {
		return registered(dA, "flynn-host", hostAddr(b)) && registered(dA, "two-nodes-web", webs[b])
	})
	if hosttest.Firewall() {
		// Node B follows the hosts of the discoverd it is in again.
		waitForwardRules(t, b, "127.0.0.1")
	}
}

// waitForwardRules waits until the node's forward chain fences peer off
// and DOCKER-USER jumps to it for the node's bridge.
func waitForwardRules(t *testing.T, n *testNode, peer string) {
	t.Helper()
	chain := n.appNet.Chain + firewall.ForwardSuffix
	want := []string{
		"-A " + chain + " -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
		"-A " + chain + " -d " + peer + "/32 -p tcp -m multiport --dports 80,443,3000:3999 -j RETURN",
		"-A " + chain + " -d " + peer + "/32 -p tcp -j REJECT --reject-with tcp-reset",
		"-A " + chain + " -d " + peer + "/32 -j REJECT --reject-with icmp-port-unreachable",
	}
	poll.UntilNil(t, 20*time.Second, "forward rules of node "+n.cfg.Daemon.ExternalIP, func() error {
		rules := iptables(t, "-S", chain)
		for _, w := range want {
			if !strings.Contains(rules, w+"\n") {
				return fmt.Errorf("%s lacks %q:\n%s", chain, w, rules)
			}
		}
		if own := n.cfg.Daemon.ExternalIP + "/32"; strings.Contains(rules, own) {
			return fmt.Errorf("%s fences the node's own address:\n%s", chain, rules)
		}
		if jump := "-A DOCKER-USER -i " + n.appNet.Bridge + " -j " + chain; !strings.Contains(iptables(t, "-S", "DOCKER-USER"), jump) {
			return fmt.Errorf("DOCKER-USER lacks %q", jump)
		}
		return nil
	})
}

// freeAddrOn returns ip with a port that was free a moment ago.
func freeAddrOn(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
