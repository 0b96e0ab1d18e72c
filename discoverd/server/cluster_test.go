package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
	"github.com/openflynn/flynn/discoverd/store"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// node is a discoverd run as its own process, so that a test can SIGKILL
// it the way a node is lost: no graceful stop, no leadership handed over.
type node struct {
	t       *testing.T
	bin     string
	name    string
	ip      string
	key     string
	join    []string
	dataDir string
	// httpAddr, clientAddr and peerAddr stay the same across restarts.
	httpAddr, clientAddr, peerAddr string
	cmd                            *exec.Cmd
	exited                         chan error
}

// URL is the node's discoverd.
func (n *node) URL() string { return "http://" + n.httpAddr }

// Client returns a client of the node's discoverd with the cluster key.
func (n *node) Client() *client.Client { return client.New(n.URL(), n.key) }

// newNode returns a discoverd process on ip with free ports, not started.
func newNode(t *testing.T, bin, ip, name, key string, join ...string) *node {
	t.Helper()
	n := &node{t: t, bin: bin, name: name, ip: ip, key: key, join: join, dataDir: t.TempDir()}
	for _, addr := range []*string{&n.httpAddr, &n.clientAddr, &n.peerAddr} {
		a, err := discoverdtest.FreeAddrOn(ip)
		if err != nil {
			t.Fatal(err)
		}
		*addr = a
	}
	t.Cleanup(n.kill)
	return n
}

// start runs the discoverd and waits until it serves.
func (n *node) start() {
	n.t.Helper()
	logPath := filepath.Join(n.t.TempDir(), "discoverd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		n.t.Fatal(err)
	}
	defer logFile.Close()
	args := []string{
		"--http-addr", n.httpAddr,
		"--etcd-client-addr", n.clientAddr,
		"--etcd-peer-addr", n.peerAddr,
		"--data-dir", n.dataDir,
		"--log-level", "warn",
	}
	if n.key == "" {
		args = append(args, "--insecure") // discoverd refuses to start without a key otherwise
	}
	cmd := exec.Command(n.bin, args...)
	cmd.Env = append(os.Environ(),
		"FLYNN_CLUSTER_KEY="+n.key,
		"FLYNN_EXTERNAL_IP="+n.ip,
		"FLYNN_HOST_ID="+n.name,
		"FLYNN_JOIN="+strings.Join(n.join, ","),
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.cmd, n.exited = cmd, make(chan error, 1)
	go func() { n.exited <- cmd.Wait() }()
	n.t.Cleanup(func() {
		if n.t.Failed() {
			b, _ := os.ReadFile(logPath)
			n.t.Logf("discoverd %s log:\n%s", n.name, b)
		}
	})
	var exitErr error
	err = poll.Wait(context.Background(), 90*time.Second, func() error {
		select {
		case exitErr = <-n.exited:
			n.cmd = nil
			return nil
		default:
		}
		resp, err := http.Get(n.URL() + "/ping")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	if n.cmd == nil {
		n.t.Fatalf("discoverd %s exited: %v", n.name, exitErr)
	}
	if err != nil {
		n.t.Fatalf("discoverd %s does not serve: %v", n.name, err)
	}
}

// kill SIGKILLs the discoverd, with its etcd member, and waits for it.
func (n *node) kill() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Kill()
	<-n.exited
	n.cmd = nil
}

// buildDiscoverd builds the discoverd binary for the test.
func buildDiscoverd(t *testing.T) string {
	t.Helper()
	goBin := testdeps.LookPath(t, "go")
	bin := filepath.Join(t.TempDir(), "discoverd")
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/openflynn/flynn/cmd/discoverd").CombinedOutput()
	if err != nil {
		t.Fatalf("go build discoverd: %v\n%s", err, out)
	}
	return bin
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func instance(port int) *discoverd.Instance {
	return &discoverd.Instance{Addr: fmt.Sprintf("127.0.0.1:%d", port), Proto: "http"}
}

// membership returns the etcd members as c's discoverd lists them: the
// started voting members' names, sorted, and their ids by name.
func membership(t *testing.T, ctx context.Context, c *client.Client) (names []string, ids map[string]string) {
	t.Helper()
	m, err := c.EtcdMembers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids = map[string]string{}
	for _, mem := range m.Members {
		if mem.Learner || !mem.Started() {
			t.Errorf("member %s (%s) is a learner or not started", mem.ID, mem.Name)
			continue
		}
		names = append(names, mem.Name)
		ids[mem.Name] = mem.ID
	}
	slices.Sort(names)
	return names, ids
}

// role returns the etcd role a discoverd recorded in its data dir.
func role(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "etcd-node.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Role string `json:"role"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.Role
}

// addrs returns the addresses of service's instances as c sees them.
func addrs(ctx context.Context, c *client.Client, service string) ([]string, error) {
	list, err := c.Instances(ctx, service)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, inst := range list {
		out = append(out, inst.Addr)
	}
	slices.Sort(out)
	return out, nil
}

// TestEtcdCluster runs discoverds as the nodes of one machine run them,
// each on its own loopback address. Only one etcd member at a time runs in
// the test process (the others are discoverd processes): etcd's peer
// connections between two in-process members outlive their Close by
// seconds, which the goroutine leak check would report.
func TestEtcdCluster(t *testing.T) {
	testdeps.Short(t)
	bin := buildDiscoverd(t)
	t.Run("three members and a client", func(t *testing.T) { testEtcdClusterAcrossNodes(t, bin) })
	t.Run("without a key", func(t *testing.T) { testEtcdJoinWithoutKey(t, bin) })
}

// testEtcdClusterAcrossNodes: the discoverds of three nodes (127.0.0.1-3)
// form a three-member etcd cluster, a fourth node's discoverd is a client of
// it, losing a node (SIGKILL of the first, which founded the cluster and
// leads it) leaves the others writing, and the node coming back on its data
// dir rejoins and catches up; removed while away, it joins anew.
func testEtcdClusterAcrossNodes(t *testing.T, bin string) {
	ctx := ctxFor(t, 5*time.Minute)
	const key = "the cluster key"

	n1 := newNode(t, bin, "127.0.0.1", "n1", key)
	n1.start()
	n2 := discoverdtest.New(t, discoverdtest.Options{Key: key, IP: "127.0.0.2", Name: "n2", Join: []string{n1.URL()}})
	n3 := newNode(t, bin, "127.0.0.3", "n3", key, n1.URL(), n2.URL)
	n3.start()

	names, ids := membership(t, ctx, n2.Client())
	if want := []string{"n1", "n2", "n3"}; !slices.Equal(names, want) {
		t.Fatalf("etcd members = %v, want %v", names, want)
	}
	for _, k := range []string{"", "wrong key"} {
		if _, err := client.New(n2.URL, k).EtcdMembers(ctx); !httpjson.IsCode(err, httpjson.CodeUnauthorized) {
			t.Errorf("member list with key %q: err = %v, want unauthorized", k, err)
		}
	}

	n4 := discoverdtest.New(t, discoverdtest.Options{Key: key, IP: "127.0.0.4", Name: "n4", Join: []string{n1.URL(), n2.URL, n3.URL()}, EndpointSyncInterval: 200 * time.Millisecond})
	// The processes end before the in-process discoverds stop, so that
	// no peer keeps a connection to these open.
	t.Cleanup(func() { n1.kill(); n3.kill() })
	if got := role(t, n4.DataDir); got != "client" {
		t.Errorf("the fourth discoverd's role = %q, want client", got)
	}
	if _, err := os.Stat(filepath.Join(n4.DataDir, "etcd")); err == nil {
		t.Error("the fourth discoverd has etcd data: it runs a member")
	}
	if names, _ := membership(t, ctx, n4.Client()); len(names) != 3 {
		t.Errorf("etcd members after a fourth node = %v, want three", names)
	}

	clients := []*client.Client{n1.Client(), n2.Client(), n3.Client(), n4.Client()}
	var want []string
	for i, c := range clients {
		c.TTL = 5 * time.Minute
		if err := c.AddService(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.RegisterOnce(ctx, "web", instance(7001+i)); err != nil {
			t.Fatalf("register through discoverd %d: %v", i+1, err)
		}
		want = append(want, instance(7001+i).Addr)
	}
	for i, c := range clients {
		if got, err := addrs(ctx, c, "web"); err != nil || !slices.Equal(got, want) {
			t.Errorf("discoverd %d sees %v, %v; want %v", i+1, got, err, want)
		}
	}

	// Lose node 1: the others (the client too) keep writing.
	n1.kill()
	lost := time.Now()
	for i, c := range clients[1:] {
		port := 7101 + i
		poll.UntilNil(t, 15*time.Second, fmt.Sprintf("a write through discoverd %d after the loss", i+2), func() error {
			_, err := c.RegisterOnce(ctx, "web", instance(port))
			return err
		})
		want = append(want, instance(port).Addr)
	}
	t.Logf("all writes succeeded %s after the loss", time.Since(lost).Round(time.Millisecond))
	reg, err := clients[3].Register(ctx, "heartbeat", instance(7200))
	if err != nil {
		t.Fatalf("register with heartbeats through the client discoverd: %v", err)
	}
	defer reg.Deregister(ctx)
	slices.Sort(want)

	// Node 1 comes back on its data, told of the others as flynn-host
	// would: the same member, caught up.
	n1.join = []string{n2.URL, n3.URL(), n4.URL}
	n1.start()
	poll.Until(t, 30*time.Second, "node 1 sees the writes made while it was away", func() bool {
		got, err := addrs(ctx, clients[0], "web")
		return err == nil && slices.Equal(got, want)
	})
	names, back := membership(t, ctx, n2.Client())
	if !slices.Equal(names, []string{"n1", "n2", "n3"}) || back["n1"] != ids["n1"] {
		t.Errorf("after node 1 came back: members %v, n1 is %s; want n1 n2 n3, n1 still %s", names, back["n1"], ids["n1"])
	}
	if got := role(t, n1.dataDir); got != "member" {
		t.Errorf("node 1's role = %q, want member", got)
	}

	// Removed while away, node 1 joins anew on its return.
	n1.kill()
	tlsConfig, err := store.ClientTLS(key)
	if err != nil {
		t.Fatal(err)
	}
	etcd, err := store.Dial(ctx, n2.EtcdEndpoints(), tlsConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	id, _ := store.ParseID(ids["n1"])
	// etcd refuses to remove a member it saw a moment ago until its
	// peers have been connected for a while: it might cost the quorum.
	poll.UntilNil(t, 30*time.Second, "node 1's member removed", func() error {
		_, err := etcd.MemberRemove(ctx, id)
		return err
	})
	n1.start()
	names, after := membership(t, ctx, n2.Client())
	if !slices.Equal(names, []string{"n1", "n2", "n3"}) || after["n1"] == ids["n1"] {
		t.Errorf("after node 1 was removed and came back: members %v, n1 is %s; want n1 n2 n3, n1 a new member", names, after["n1"])
	}
	if _, err := os.Stat(filepath.Join(n1.dataDir, "etcd.removed")); err != nil {
		t.Errorf("the removed member's data was not kept aside: %v", err)
	}
	poll.Until(t, 30*time.Second, "node 1, joined anew, sees the writes", func() bool {
		got, err := addrs(ctx, clients[0], "web")
		return err == nil && slices.Equal(got, want)
	})
}

// testEtcdJoinWithoutKey: without a cluster key the members join over
// plain HTTP, as a keyless single node serves today.
func testEtcdJoinWithoutKey(t *testing.T, bin string) {
	ctx := ctxFor(t, 2*time.Minute)
	n1 := discoverdtest.New(t, discoverdtest.Options{IP: "127.0.0.1", Name: "n1"})
	n2 := newNode(t, bin, "127.0.0.2", "n2", "", n1.URL)
	n2.start()
	m, err := n1.Client().EtcdMembers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Voting()) != 2 {
		t.Fatalf("members = %+v, want two voting", m.Members)
	}
	for _, mem := range m.Members {
		if !strings.HasPrefix(mem.PeerURLs[0], "http://") {
			t.Errorf("member %s peers at %v, want plain http", mem.Name, mem.PeerURLs)
		}
	}
	if err := n2.Client().AddService(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.Client().Instances(ctx, "one"); err != nil {
		t.Errorf("node 1 does not see node 2's service: %v", err)
	}
}

// A single node's data from before (no role recorded, the peer port plain
// HTTP at another address, the member named "discoverd") starts as the
// same member, now under the node's name and with its peer URL corrected.
func TestEtcdSingleNodeFromBefore(t *testing.T) {
	testdeps.Short(t)
	ctx := ctxFor(t, 2*time.Minute)
	dir := t.TempDir()
	old, err := discoverdtest.Start(discoverdtest.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Client().AddService(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	old.Stop()
	if err := os.Remove(filepath.Join(dir, "etcd-node.json")); err != nil {
		t.Fatal(err)
	}

	const key = "the cluster key"
	srv := discoverdtest.New(t, discoverdtest.Options{DataDir: dir, Key: key, Name: "host1"})
	if _, err := srv.Client().Instances(ctx, "kept"); err != nil {
		t.Errorf("the service from before: %v", err)
	}
	m, err := srv.Client().EtcdMembers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Members) != 1 || m.Members[0].Name != "host1" || !strings.HasPrefix(m.Members[0].PeerURLs[0], "https://") {
		t.Errorf("members = %+v, want host1 alone with an https peer URL", m.Members[0])
	}
	if got := role(t, dir); got != "member" {
		t.Errorf("role = %q, want member", got)
	}
}
