package scheduler

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
	"github.com/openflynn/flynn/pkg/poll"
)

func TestLeads(t *testing.T) {
	now := time.Now()
	const ttl = 10 * time.Second
	self := &discoverd.Instance{ID: "a", Index: 5}
	lease := func(renewedAgo time.Duration, inst *discoverd.Instance) client.Lease {
		return client.Lease{Instance: inst, Renewed: now.Add(-renewedAgo), TTL: ttl}
	}
	tests := []struct {
		name   string
		leader *discoverd.Instance
		lease  client.Lease
		want   bool
	}{
		{"named leader, lease just renewed", self, lease(0, self), true},
		{"named leader, lease short of the fence", self, lease(7*time.Second, self), true},
		{"named leader, lease past the fence", self, lease(8*time.Second, self), false},
		{"named leader, lease run out", self, lease(11*time.Second, self), false},
		{"registered anew since it was named", self, lease(0, &discoverd.Instance{ID: "a", Index: 9}), false},
		{"another leads", &discoverd.Instance{ID: "b", Index: 3}, lease(0, self), false},
		{"no leader heard of yet", nil, lease(0, self), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := leads(tt.leader, tt.lease, now); got != tt.want {
				t.Errorf("leads = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPartitionedLeaderStopsBeforeAnotherLeads cuts the leading scheduler
// off from discoverd (its heartbeats and its watch go nowhere, without an
// error, as across a network partition) and checks that it stops acting
// before the standby is told it leads: never do two schedulers act at
// once. Once the partition heals, the old leader is registered anew
// behind the new one and stands by; it leads again when that one leaves.
// It needs discoverd on embedded etcd, so it skips under -short.
func TestPartitionedLeaderStopsBeforeAnotherLeads(t *testing.T) {
	h := newHarness(t)
	d := discoverdtest.New(t, discoverdtest.Options{})
	proxy := newPartitionProxy(t, strings.TrimPrefix(d.URL, "http://"))
	cluster := newFakeCluster("h1")
	ctx := t.Context()
	const ttl = 3 * time.Second // heartbeats every second, the fence 2.25 s after the last

	// Every start and end of a scheduler's work, in the order they
	// happened: Run returns only once all it started has returned, so its
	// work's span holds every action it took.
	var spans eventLog
	type sched struct {
		name   string
		cancel context.CancelFunc
		done   chan error
		runs   *atomicCounter
	}
	start := func(name, discoverdURL string, port int) *sched {
		sctx, cancel := context.WithCancel(ctx)
		sc := &sched{name: name, cancel: cancel, done: make(chan error, 1), runs: &atomicCounter{}}
		c := client.New(discoverdURL, d.Key)
		c.TTL = ttl
		c.Logger = h.logger.With("scheduler", name)
		inst := &discoverd.Instance{ID: "scheduler-" + name, Addr: "127.0.0.1:" + itoa(port), Proto: "http"}
		go func() {
			sc.done <- RunLeader(sctx, c, inst, h.logger.With("scheduler", name), func(ctx context.Context) error {
				sc.runs.add()
				spans.add(name + " acts")
				defer spans.add(name + " stops")
				return New(testConfig(), h.ctrl, cluster, h.logger.With("scheduler", name)).Run(ctx)
			})
		}()
		return sc
	}
	end := func(sc *sched) {
		sc.cancel()
		if err := <-sc.done; err != context.Canceled {
			t.Errorf("scheduler %s: RunLeader = %v, want context.Canceled", sc.name, err)
		}
	}
	instances := func() int {
		list, err := d.Client().Instances(ctx, LeaderService)
		if err != nil {
			return -1
		}
		return len(list)
	}

	a := start("a", proxy.URL(), 1)
	poll.Until(t, 10*time.Second, "a leads", func() bool { return a.runs.get() == 1 })
	b := start("b", d.URL, 2)
	poll.Until(t, 10*time.Second, "b registered behind a", func() bool { return instances() == 2 })
	h.scale(h.rel, map[string]int{"web": 2})
	poll.Until(t, 5*time.Second, "web=2", func() bool { return cluster.live()[key(h.rel, "web")] == 2 })

	proxy.cut()
	cut := time.Now()
	poll.Until(t, 20*time.Second, "b leads once a's registration expired", func() bool { return b.runs.get() == 1 })
	events := spans.all()
	t.Logf("b leads %s after the partition; spans %v", time.Since(cut).Round(time.Millisecond), events)
	if stopped, other := nth(events, "a stops", 1), nth(events, "b acts", 1); stopped < 0 || stopped > other {
		t.Fatalf("spans %v: the partitioned leader a must stop acting before b acts", events)
	}
	cluster.host("h1").kill()
	poll.Until(t, 5*time.Second, "b replaces a crashed job", func() bool { return cluster.live()[key(h.rel, "web")] == 2 })

	proxy.heal()
	poll.Until(t, 10*time.Second, "a registered again", func() bool { return instances() == 2 })
	// Registered anew, a is younger than b: it hears that b leads, and
	// whatever it heard before the partition healed no longer counts.
	poll.Holds(t, ttl, "a stands by while b leads", func() bool { return a.runs.get() == 1 })
	end(b)
	poll.Until(t, 10*time.Second, "a leads again once b left", func() bool { return a.runs.get() == 2 })
	events = spans.all()
	if stopped, again := nth(events, "b stops", 1), nth(events, "a acts", 2); stopped < 0 || stopped > again {
		t.Errorf("spans %v: b must stop before a acts again", events)
	}
	end(a)
}

// nth returns the index of the n-th (from 1) e in events, or -1.
func nth(events []string, e string, n int) int {
	for i, ev := range events {
		if ev == e {
			if n--; n == 0 {
				return i
			}
		}
	}
	return -1
}

// partitionProxy forwards TCP connections to a target until it is cut:
// then no byte gets through either way, connections stay open and new ones
// are accepted but go nowhere, as across a network partition. heal lets
// the bytes held back through.
type partitionProxy struct {
	ln     net.Listener
	target string
	closed chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	healed chan struct{} // closed by heal; nil while not cut
	conns  []net.Conn
	done   bool
}

func newPartitionProxy(t *testing.T, target string) *partitionProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &partitionProxy{ln: ln, target: target, closed: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// URL is the proxy's address as an HTTP base URL.
func (p *partitionProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *partitionProxy) serve() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			down.Close()
			continue
		}
		p.mu.Lock()
		if p.done {
			p.mu.Unlock()
			down.Close()
			up.Close()
			return
		}
		p.conns = append(p.conns, down, up)
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(up, down)
		go p.pipe(down, up)
	}
}

// pipe copies src to dst while the proxy lets bytes through; the end of
// either ends both.
func (p *partitionProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer src.Close()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.pass() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// pass waits while the proxy is cut; it returns false when the proxy
// closes meanwhile.
func (p *partitionProxy) pass() bool {
	p.mu.Lock()
	healed := p.healed
	p.mu.Unlock()
	if healed == nil {
		return true
	}
	select {
	case <-healed:
		return true
	case <-p.closed:
		return false
	}
}

func (p *partitionProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.healed == nil {
		p.healed = make(chan struct{})
	}
}

func (p *partitionProxy) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.healed != nil {
		close(p.healed)
		p.healed = nil
	}
}

func (p *partitionProxy) close() {
	p.mu.Lock()
	p.done = true
	conns := p.conns
	p.mu.Unlock()
	close(p.closed)
	p.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	p.wg.Wait()
}
