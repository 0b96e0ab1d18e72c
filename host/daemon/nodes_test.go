package daemon

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/poll"
)

// Every job, app or platform, learns its node from the host, whatever
// its own env says.
func TestJobEnvNamesItsNode(t *testing.T) {
	tests := []struct {
		name string
		tune func(*Config)
		env  map[string]string // the job's own
		want []string
	}{
		{
			name: "one node",
			tune: func(c *Config) { c.ExternalIP = "10.0.0.5" },
			want: []string{"FLYNN_DISCOVERD_URL=http://10.0.0.5:1111", "FLYNN_JOIN=", "FLYNN_APP_GATEWAY=" + fakeGateway, "EXTERNAL_IP=10.0.0.5"},
		},
		{
			name: "joined node",
			tune: func(c *Config) {
				c.ExternalIP = "10.0.0.6"
				c.DiscoverdPeers = []string{"http://10.0.0.5:1111", "http://10.0.0.7:1111"}
			},
			want: []string{"FLYNN_DISCOVERD_URL=http://10.0.0.6:1111", "FLYNN_JOIN=http://10.0.0.5:1111,http://10.0.0.7:1111"},
		},
		{
			name: "own discoverd elsewhere",
			tune: func(c *Config) { c.DiscoverdURL = "http://127.0.0.2:41111" },
			want: []string{"FLYNN_DISCOVERD_URL=http://127.0.0.2:41111"},
		},
		{
			name: "release env overridden",
			tune: func(c *Config) { c.ExternalIP = "10.0.0.6" },
			env:  map[string]string{"FLYNN_DISCOVERD_URL": "http://10.0.0.5:1111", "FLYNN_JOIN": "x", "FLYNN_APP_GATEWAY": "y", "OTHER": "kept"},
			want: []string{"FLYNN_DISCOVERD_URL=http://10.0.0.6:1111", "FLYNN_JOIN=", "FLYNN_APP_GATEWAY=" + fakeGateway, "OTHER=kept"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 40000, 40009, func(h *harness) { tt.tune(&h.cfg) })
			for _, hostNet := range []bool{false, true} {
				j := testJob(fmt.Sprintf("h1-env-%v", hostNet), "sleep")
				j.Config.HostNetwork = hostNet
				j.Config.Env = tt.env
				if _, err := h.d.AddJob(context.Background(), j); err != nil {
					t.Fatal(err)
				}
				env := h.backend.spec("flynn-" + j.ID).Env
				for _, w := range tt.want {
					if !slices.Contains(env, w) {
						t.Errorf("host network %v: env %q lacks %q", hostNet, env, w)
					}
				}
			}
		})
	}
}

// The forward chain follows the nodes registered, without the node itself,
// is written only when they change, and is written again after a failure.
func TestFirewallFollowsTheNodes(t *testing.T) {
	var rs restores
	var failRestores atomic.Int32
	h := newHarness(t, 40000, 40009, func(h *harness) {
		h.cfg.ExternalIP = "10.0.0.1"
		h.cfg.IPTables = fakeIPTables{trail: h.trail, restores: &rs, failRestores: &failRestores}
		h.nodes = make(chan []string)
	})
	const chain = "FLYNN-APPS-FWD"
	waitRules := func(what string, want, wantNot []string) {
		t.Helper()
		poll.UntilNil(t, 10*time.Second, what, func() error {
			got := rs.last(chain)
			for _, w := range want {
				if !strings.Contains(got, w) {
					return fmt.Errorf("rules lack %q:\n%s", w, got)
				}
			}
			for _, w := range wantNot {
				if strings.Contains(got, w) {
					return fmt.Errorf("rules have %q:\n%s", w, got)
				}
			}
			return nil
		})
	}
	send := func(addrs ...string) {
		t.Helper()
		select {
		case h.nodes <- addrs:
		case <-time.After(10 * time.Second):
			t.Fatal("the daemon does not follow the nodes")
		}
	}

	send("10.0.0.1")
	waitRules("chain written for a lone node", []string{"-A " + chain + " -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"}, []string{"-d "})

	send("10.0.0.2", "10.0.0.1")
	waitRules("peer fenced", []string{
		"-A " + chain + " -d 10.0.0.2/32 -p tcp -m multiport --dports 80,443,3000:3999 -j RETURN",
		"-A " + chain + " -d 10.0.0.2/32 -p tcp -j REJECT --reject-with tcp-reset",
		"-A " + chain + " -d 10.0.0.2/32 -j REJECT --reject-with icmp-port-unreachable",
	}, []string{"10.0.0.1/32"})

	// The same nodes again, in another order: nothing to write. The
	// next send returns once the one before is handled.
	n := rs.count(chain)
	send("10.0.0.1", "10.0.0.2")
	failRestores.Store(2)
	send("10.0.0.1", "10.0.0.3")
	if got := rs.count(chain); got != n {
		t.Fatalf("chain written %d times for the same nodes, want 0", got-n)
	}
	// Two failed writes, then the latest nodes hold.
	waitRules("peer replaced after failed writes", []string{"-d 10.0.0.3/32"}, []string{"10.0.0.2/32"})
	if failRestores.Load() >= 0 {
		t.Fatalf("writes failed %d times, want 2", 2-failRestores.Load())
	}
}

func TestNoFirewallFollowsNoNodes(t *testing.T) {
	var rs restores
	h := newHarness(t, 40000, 40009, func(h *harness) {
		h.cfg.NoFirewall = true
		h.cfg.IPTables = fakeIPTables{trail: h.trail, restores: &rs}
		h.nodes = make(chan []string)
	})
	poll.Holds(t, 200*time.Millisecond, "nobody watches the nodes", func() bool {
		select {
		case h.nodes <- []string{"10.0.0.2"}:
			return false
		default:
			return true
		}
	})
	if got := len(rs.list); got != 0 {
		t.Fatalf("%d iptables-restore runs without a firewall", got)
	}
}
