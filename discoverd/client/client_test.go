package client_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/testdeps"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func inst(port int) *discoverd.Instance {
	return &discoverd.Instance{Addr: fmt.Sprintf("127.0.0.1:%d", port), Proto: "http"}
}

// nextEvent returns the next event from ch or fails after a deadline.
func nextEvent(t *testing.T, ch <-chan *discoverd.Event) *discoverd.Event {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return nil
}

func expectEvent(t *testing.T, ch <-chan *discoverd.Event, kind discoverd.EventKind, addr string) *discoverd.Event {
	t.Helper()
	e := nextEvent(t, ch)
	got := ""
	if e.Instance != nil {
		got = e.Instance.Addr
	}
	if e.Kind != kind || got != addr {
		t.Fatalf("event = %s %q, want %s %q", e.Kind, got, kind, addr)
	}
	return e
}

func TestRegisterListLeader(t *testing.T) {
	srv := discoverdtest.New(t, discoverdtest.Options{})
	c := srv.Client()
	ctx := ctxT(t)
	for _, port := range []int{1001, 1002, 1003} {
		if _, err := c.Register(ctx, "web", inst(port)); err != nil {
			t.Fatal(err)
		}
	}
	list, err := c.Instances(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, i := range list {
		addrs = append(addrs, i.Addr)
		if i.Index == 0 || i.ID != discoverd.InstanceID("http", i.Addr) {
			t.Errorf("instance %+v: want a server index and the default id", i)
		}
	}
	want := []string{"127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003"}
	if !slices.Equal(addrs, want) {
		t.Errorf("instances = %v, want %v (oldest first)", addrs, want)
	}
	leader, err := c.Leader(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if leader.Addr != "127.0.0.1:1001" {
		t.Errorf("leader = %s, want the oldest, 127.0.0.1:1001", leader.Addr)
	}
	services, err := c.Services(ctx)
	if err != nil || !slices.Equal(services, []string{"web"}) {
		t.Errorf("Services() = %v, %v; want [web]", services, err)
	}
}

func TestExpiryAndHeartbeat(t *testing.T) {
	srv := discoverdtest.New(t, discoverdtest.Options{})
	ctx := ctxT(t)
	c := srv.Client()
	c.TTL = 2 * time.Second
	if err := c.AddService(ctx, "exp"); err != nil {
		t.Fatal(err)
	}
	events, err := c.Watch(ctx, "exp")
	if err != nil {
		t.Fatal(err)
	}
	expectEvent(t, events, discoverd.EventCurrent, "")

	// One registration without heartbeats expires within TTL + 1s.
	once, err := c.RegisterOnce(ctx, "exp", inst(2001))
	if err != nil {
		t.Fatal(err)
	}
	expectEvent(t, events, discoverd.EventUp, once.Addr)
	expectEvent(t, events, discoverd.EventLeader, once.Addr)
	registered := time.Now()

	// A heartbeating one outlives several TTLs.
	if _, err := c.Register(ctx, "exp", inst(2002)); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, events, discoverd.EventUp, "127.0.0.1:2002")
	expectEvent(t, events, discoverd.EventDown, once.Addr)
	gone := time.Since(registered)
	if gone > c.TTL+time.Second {
		t.Errorf("unheartbeated instance went after %s, want within TTL+1s = %s", gone, c.TTL+time.Second)
	}
	expectEvent(t, events, discoverd.EventLeader, "127.0.0.1:2002")
	t.Logf("expired %s after registration (TTL %s)", gone.Round(time.Millisecond), c.TTL)

	// No event at all for 3 TTLs: a wait on the stream, not a poll.
	select {
	case e := <-events:
		t.Fatalf("unexpected event while heartbeating: %s %+v", e.Kind, e.Instance)
	case <-time.After(3 * c.TTL):
	}
	list, err := c.Instances(ctx, "exp")
	if err != nil || len(list) != 1 || list[0].Addr != "127.0.0.1:2002" {
		t.Fatalf("after 3 TTLs of heartbeats: instances = %v, %v", list, err)
	}
}

func TestWatchOrderAndLeaderFailover(t *testing.T) {
	srv := discoverdtest.New(t, discoverdtest.Options{})
	ctx := ctxT(t)
	c := srv.Client()
	a, err := c.Register(ctx, "db", inst(3001))
	if err != nil {
		t.Fatal(err)
	}
	events, err := c.Watch(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	expectEvent(t, events, discoverd.EventUp, "127.0.0.1:3001")
	expectEvent(t, events, discoverd.EventCurrent, "")
	expectEvent(t, events, discoverd.EventLeader, "127.0.0.1:3001")

	b, err := c.Register(ctx, "db", inst(3002))
	if err != nil {
		t.Fatal(err)
	}
	expectEvent(t, events, discoverd.EventUp, "127.0.0.1:3002")
	cc, err := c.Register(ctx, "db", inst(3003))
	if err != nil {
		t.Fatal(err)
	}
	expectEvent(t, events, discoverd.EventUp, "127.0.0.1:3003")

	// New data on the same instance is an update, not an up.
	changed := inst(3002)
	changed.Meta = map[string]string{"role": "replica"}
	if _, err := c.RegisterOnce(ctx, "db", changed); err != nil {
		t.Fatal(err)
	}
	e := expectEvent(t, events, discoverd.EventUpdate, "127.0.0.1:3002")
	if e.Instance.Meta["role"] != "replica" {
		t.Errorf("update carries meta %v", e.Instance.Meta)
	}

	// The leader dies: the next-oldest takes over.
	if err := a.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, events, discoverd.EventDown, "127.0.0.1:3001")
	expectEvent(t, events, discoverd.EventLeader, "127.0.0.1:3002")
	leader, err := c.Leader(ctx, "db")
	if err != nil || leader.Addr != "127.0.0.1:3002" {
		t.Fatalf("Leader() = %v, %v; want 127.0.0.1:3002", leader, err)
	}
	// A non-leader leaving changes no leader.
	if err := cc.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, events, discoverd.EventDown, "127.0.0.1:3003")
	if err := b.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, events, discoverd.EventDown, "127.0.0.1:3002")
	if _, err := c.Leader(ctx, "db"); !httpjson.IsNotFound(err) {
		t.Errorf("Leader() of an empty service = %v, want not_found", err)
	}
}

func TestRegistrationEndsWithContext(t *testing.T) {
	srv := discoverdtest.New(t, discoverdtest.Options{})
	c := srv.Client()
	ctx := ctxT(t)
	regCtx, cancel := context.WithCancel(ctx)
	r, err := c.Register(regCtx, "ctx", inst(4001))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-r.Done()
	list, err := c.Instances(ctx, "ctx")
	if err != nil || len(list) != 0 {
		t.Fatalf("after the context ended: instances = %v, %v; want none", list, err)
	}
}

func TestReRegistersWhenForgotten(t *testing.T) {
	srv := discoverdtest.New(t, discoverdtest.Options{})
	ctx := ctxT(t)
	c := srv.Client()
	c.TTL = 3 * time.Second // heartbeat every second
	if _, err := c.Register(ctx, "svc", inst(5001)); err != nil {
		t.Fatal(err)
	}
	other := srv.Client()
	id := discoverd.InstanceID("http", "127.0.0.1:5001")
	if err := other.Deregister(ctx, "svc", id); err != nil {
		t.Fatal(err)
	}
	took := poll.Until(t, 5*time.Second, "instance registered again", func() bool {
		list, err := other.Instances(ctx, "svc")
		return err == nil && len(list) == 1
	})
	t.Logf("re-registered %s after removal", took.Round(time.Millisecond))

	// Even the service may vanish (a new etcd): the heartbeat recreates it.
	if err := other.RemoveService(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "service and instance recreated", func() bool {
		list, err := other.Instances(ctx, "svc")
		return err == nil && len(list) == 1
	})
}

// A registration's lease moves on with each confirmed heartbeat, and its
// index changes when discoverd forgot the instance and it was registered
// anew: the instance lost its place, and with it any leadership.
func TestLeaseFollowsHeartbeats(t *testing.T) {
	srv := discoverdtest.New(t, discoverdtest.Options{})
	ctx := ctxT(t)
	c := srv.Client()
	c.TTL = 3 * time.Second // heartbeat every second
	before := time.Now()
	r, err := c.Register(ctx, "lease", inst(5101))
	if err != nil {
		t.Fatal(err)
	}
	first := r.Lease()
	if first.Renewed.Before(before) || first.Renewed.After(time.Now()) || first.TTL != c.TTL {
		t.Fatalf("lease after registering = %+v; want renewed during Register (after %s), TTL %s", first, before, c.TTL)
	}
	if got, want := first.Until(), first.Renewed.Add(c.TTL); !got.Equal(want) {
		t.Errorf("Until = %s, want %s", got, want)
	}
	if first.Instance.Index == 0 || first.Instance.Index != r.Instance().Index {
		t.Fatalf("lease instance index = %d, want the registration's %d", first.Instance.Index, r.Instance().Index)
	}

	select {
	case <-r.Renewed():
	case <-time.After(10 * time.Second):
		t.Fatal("no confirmed heartbeat within 10s")
	}
	renewed := r.Lease()
	if !renewed.Renewed.After(first.Renewed) || renewed.Instance.Index != first.Instance.Index {
		t.Errorf("lease after a heartbeat = %+v (index %d); want renewed later than %s at the same index %d",
			renewed, renewed.Instance.Index, first.Renewed, first.Instance.Index)
	}

	if err := srv.Client().Deregister(ctx, "lease", r.Instance().ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "registered anew at another index", func() bool {
		return r.Lease().Instance.Index != first.Instance.Index
	})
}

func TestSurvivesDiscoverdRestart(t *testing.T) {
	testdeps.Short(t)
	dir := t.TempDir()
	httpAddr, _ := discoverdtest.FreeAddr()
	clientAddr, _ := discoverdtest.FreeAddr()
	peerAddr, _ := discoverdtest.FreeAddr()
	opts := discoverdtest.Options{DataDir: dir, HTTPAddr: httpAddr, EtcdClientAddr: clientAddr, EtcdPeerAddr: peerAddr}
	srv, err := discoverdtest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	c := srv.Client()
	c.TTL = 3 * time.Second
	if _, err := c.Register(ctx, "app", inst(6001)); err != nil {
		t.Fatal(err)
	}
	events, _ := c.Watch(ctx, "app")
	expectEvent(t, events, discoverd.EventUp, "127.0.0.1:6001")
	expectEvent(t, events, discoverd.EventCurrent, "")
	expectEvent(t, events, discoverd.EventLeader, "127.0.0.1:6001")

	srv.Stop()
	srv, err = discoverdtest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	// The watch reconnects and starts over with the full set.
	expectEvent(t, events, discoverd.EventUp, "127.0.0.1:6001")
	expectEvent(t, events, discoverd.EventCurrent, "")
	list, err := c.Instances(ctx, "app")
	if err != nil || len(list) != 1 {
		t.Fatalf("after restart: instances = %v, %v", list, err)
	}
}

func TestServiceMetaCompareAndSet(t *testing.T) {
	srv := discoverdtest.New(t, discoverdtest.Options{})
	ctx := ctxT(t)
	c := srv.Client()
	if err := c.AddService(ctx, "pg"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ServiceMeta(ctx, "pg"); !httpjson.IsNotFound(err) {
		t.Fatalf("meta before any write: %v, want not_found", err)
	}
	m := &discoverd.ServiceMeta{Data: []byte(`{"primary":"a"}`)}
	if err := c.SetServiceMeta(ctx, "pg", m); err != nil {
		t.Fatal(err)
	}
	first := m.Index
	if first == 0 {
		t.Fatal("no index after create")
	}
	// A second create-only write loses.
	if err := c.SetServiceMeta(ctx, "pg", &discoverd.ServiceMeta{Data: []byte(`{}`)}); !httpjson.IsCode(err, httpjson.CodePreconditionFailed) {
		t.Fatalf("create over existing meta: %v, want precondition_failed", err)
	}
	m.Data = []byte(`{"primary":"b"}`)
	if err := c.SetServiceMeta(ctx, "pg", m); err != nil {
		t.Fatal(err)
	}
	// A writer holding the old index loses.
	stale := &discoverd.ServiceMeta{Data: []byte(`{"primary":"c"}`), Index: first}
	if err := c.SetServiceMeta(ctx, "pg", stale); !httpjson.IsCode(err, httpjson.CodePreconditionFailed) {
		t.Fatalf("stale write: %v, want precondition_failed", err)
	}
	got, err := c.ServiceMeta(ctx, "pg")
	if err != nil || string(got.Data) != `{"primary":"b"}` || got.Index != m.Index {
		t.Fatalf("meta = %s@%d, %v; want {\"primary\":\"b\"}@%d", got.Data, got.Index, err, m.Index)
	}
}

func TestAuthKey(t *testing.T) {
	srv := discoverdtest.New(t, discoverdtest.Options{Key: "s3cret"})
	ctx := ctxT(t)
	anon := client.New(srv.URL, "")
	if err := anon.AddService(ctx, "x"); !httpjson.IsCode(err, httpjson.CodeUnauthorized) {
		t.Fatalf("write without key: %v, want unauthorized", err)
	}
	if _, err := anon.RegisterOnce(ctx, "x", inst(1)); !httpjson.IsCode(err, httpjson.CodeUnauthorized) {
		t.Fatalf("register without key: %v, want unauthorized", err)
	}
	if err := client.New(srv.URL, "wrong").AddService(ctx, "x"); !httpjson.IsCode(err, httpjson.CodeUnauthorized) {
		t.Fatalf("write with a wrong key: %v, want unauthorized", err)
	}
	if _, err := srv.Client().Register(ctx, "x", inst(1)); err != nil {
		t.Fatalf("write with the key: %v", err)
	}
	if list, err := anon.Instances(ctx, "x"); err != nil || len(list) != 1 {
		t.Fatalf("read without key = %v, %v; reads are open", list, err)
	}
}

func TestDNS(t *testing.T) {
	srv := discoverdtest.New(t, discoverdtest.Options{DNS: true})
	ctx := ctxT(t)
	c := srv.Client()
	for _, addr := range []string{"127.0.0.1:7001", "127.0.0.2:7002"} {
		if _, err := c.Register(ctx, "api", &discoverd.Instance{Addr: addr, Proto: "http"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			dc := &dns.Client{Net: network, Timeout: 5 * time.Second}
			query := func(name string, qtype uint16) *dns.Msg {
				m := new(dns.Msg)
				m.SetQuestion(name, qtype)
				resp, _, err := dc.Exchange(m, srv.DNSAddr)
				if err != nil {
					t.Fatalf("query %s: %v", name, err)
				}
				return resp
			}
			resp := query("api.discoverd.", dns.TypeA)
			var ips []string
			for _, rr := range resp.Answer {
				ips = append(ips, rr.(*dns.A).A.String())
			}
			sort.Strings(ips)
			if !slices.Equal(ips, []string{"127.0.0.1", "127.0.0.2"}) {
				t.Errorf("A api.discoverd = %v", ips)
			}
			resp = query("api.discoverd.", dns.TypeSRV)
			var ports []int
			for _, rr := range resp.Answer {
				ports = append(ports, int(rr.(*dns.SRV).Port))
			}
			sort.Ints(ports)
			if !slices.Equal(ports, []int{7001, 7002}) || len(resp.Extra) != 2 {
				t.Errorf("SRV api.discoverd = ports %v, %d extras", ports, len(resp.Extra))
			}
			target := resp.Answer[0].(*dns.SRV).Target
			if r := query(target, dns.TypeA); len(r.Answer) != 1 {
				t.Errorf("A %s: %v", target, r.Answer)
			}
			resp = query("leader.api.discoverd.", dns.TypeSRV)
			if len(resp.Answer) != 1 || resp.Answer[0].(*dns.SRV).Port != 7001 {
				t.Errorf("SRV leader.api.discoverd = %v, want port 7001", resp.Answer)
			}
			if r := query("nope.discoverd.", dns.TypeA); r.Rcode != dns.RcodeNameError {
				t.Errorf("unknown service rcode = %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
			}
			if r := query("example.com.", dns.TypeA); r.Rcode != dns.RcodeRefused {
				t.Errorf("outside name rcode = %s, want REFUSED (no recursors)", dns.RcodeToString[r.Rcode])
			}
		})
	}
	// dig, where installed, sees the same as our own client.
	if dig, err := exec.LookPath("dig"); err == nil {
		host, port, _ := splitHostPort(srv.DNSAddr)
		out, err := exec.Command(dig, "+short", "@"+host, "-p", port, "leader.api.discoverd", "A").Output()
		if err != nil || string(out) != "127.0.0.1\n" {
			t.Errorf("dig leader.api.discoverd = %q, %v", out, err)
		}
	}
}

func splitHostPort(addr string) (string, string, error) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:], nil
		}
	}
	return addr, "", fmt.Errorf("no port in %q", addr)
}

// startExternalEtcd runs Debian's etcd on free loopback ports.
func startExternalEtcd(t *testing.T) string {
	t.Helper()
	testdeps.Short(t)
	bin := testdeps.LookPath(t, "etcd")
	clientAddr, _ := discoverdtest.FreeAddr()
	peerAddr, _ := discoverdtest.FreeAddr()
	dir := t.TempDir()
	cmd := exec.Command(bin,
		"--name", "ext", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", "http://"+clientAddr, "--advertise-client-urls", "http://"+clientAddr,
		"--listen-peer-urls", "http://"+peerAddr, "--initial-advertise-peer-urls", "http://"+peerAddr,
		"--initial-cluster", "ext=http://"+peerAddr, "--log-level", "error")
	logFile, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
	})
	endpoint := "http://" + clientAddr
	poll.Until(t, 30*time.Second, "external etcd healthy", func() bool {
		resp, err := http.Get(endpoint + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return endpoint
}

func TestThreeDiscoverdsShareExternalEtcd(t *testing.T) {
	endpoint := startExternalEtcd(t)
	var servers []*discoverdtest.Server
	for i := 0; i < 3; i++ {
		servers = append(servers, discoverdtest.New(t, discoverdtest.Options{EtcdEndpoints: []string{endpoint}, KeyPrefix: "/flynn-test"}))
	}
	ctx := ctxT(t)
	c0, c1, c2 := servers[0].Client(), servers[1].Client(), servers[2].Client()
	if _, err := c0.Register(ctx, "shared", inst(8001)); err != nil {
		t.Fatal(err)
	}
	events, _ := c2.Watch(ctx, "shared")
	expectEvent(t, events, discoverd.EventUp, "127.0.0.1:8001")
	expectEvent(t, events, discoverd.EventCurrent, "")
	expectEvent(t, events, discoverd.EventLeader, "127.0.0.1:8001")
	if _, err := c1.Register(ctx, "shared", inst(8002)); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, events, discoverd.EventUp, "127.0.0.1:8002")

	var views [][]string
	for _, c := range []*client.Client{c0, c1, c2} {
		list, err := c.Instances(ctx, "shared")
		if err != nil {
			t.Fatal(err)
		}
		leader, err := c.Leader(ctx, "shared")
		if err != nil {
			t.Fatal(err)
		}
		view := []string{"leader=" + leader.Addr}
		for _, i := range list {
			view = append(view, i.Addr)
		}
		views = append(views, view)
	}
	want := []string{"leader=127.0.0.1:8001", "127.0.0.1:8001", "127.0.0.1:8002"}
	for i, v := range views {
		if !slices.Equal(v, want) {
			t.Errorf("discoverd %d sees %v, want %v", i, v, want)
		}
	}
}

// TestWatchBeforeTheServiceExists: a watch of a service nobody created yet
// starts empty and sees the service's first instance when it registers,
// as the router does with the service of a new app's route.
func TestWatchBeforeTheServiceExists(t *testing.T) {
	srv := discoverdtest.New(t, discoverdtest.Options{})
	ctx := ctxT(t)
	c := srv.Client()
	events, err := c.Watch(ctx, "later")
	if err != nil {
		t.Fatal(err)
	}
	expectEvent(t, events, discoverd.EventCurrent, "")
	if err := c.AddService(ctx, "later"); err != nil {
		t.Fatal(err)
	}
	first, err := c.RegisterOnce(ctx, "later", inst(2101))
	if err != nil {
		t.Fatal(err)
	}
	expectEvent(t, events, discoverd.EventUp, first.Addr)
}
