package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// startCluster starts a single-member etcd and returns its membership.
func startCluster(t *testing.T, ctx context.Context) (*Embedded, *Cluster) {
	t.Helper()
	e, err := StartEmbedded(ctx, EmbeddedConfig{Name: "n1", DataDir: t.TempDir(), ClientAddr: freeAddr(t), PeerAddr: freeAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	c, err := Dial(ctx, e.Endpoints(), e.ClientTLS(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return e, NewCluster(c, "/test")
}

// The joins AddMember answers, on a cluster whose new members never start
// (their nodes do not exist).
func TestAddMember(t *testing.T) {
	testdeps.Short(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, cl := startCluster(t, ctx)

	if _, err := cl.AddMember(ctx, "n1", "http://127.0.0.9:2380"); !errors.Is(err, ErrMemberNameTaken) {
		t.Errorf("a second n1: err = %v, want ErrMemberNameTaken", err)
	}

	first, err := cl.AddMember(ctx, "n2", "http://127.0.0.2:2380")
	if err != nil {
		t.Fatal(err)
	}
	if !first.Member.Learner {
		t.Errorf("the new member is not a learner: %+v", first.Member)
	}
	wantCluster := "n1=" + e.PeerURL() + ",n2=http://127.0.0.2:2380"
	if got := sortedCluster(first.InitialCluster); got != wantCluster {
		t.Errorf("initial cluster = %s, want %s", got, wantCluster)
	}
	if first.ClusterID != FormatID(e.ClusterID()) {
		t.Errorf("cluster id = %s, want %s", first.ClusterID, FormatID(e.ClusterID()))
	}

	// The same node asks again before its member started: the same member.
	again, err := cl.AddMember(ctx, "n2", "http://127.0.0.2:2380")
	if err != nil || again.Member.ID != first.Member.ID || sortedCluster(again.InitialCluster) != wantCluster {
		t.Errorf("asked again: %+v, %v; want member %s and %s", again, err, first.Member.ID, wantCluster)
	}

	// Another node while the learner has not started: wait.
	if _, err := cl.AddMember(ctx, "n3", "http://127.0.0.3:2380"); !errors.Is(err, ErrJoinBusy) {
		t.Errorf("a join while another is under way: err = %v, want ErrJoinBusy", err)
	}

	// A learner that never started gives way, once stale.
	cl.StaleJoinAfter = 0
	third, err := cl.AddMember(ctx, "n3", "http://127.0.0.3:2380")
	if err != nil {
		t.Fatalf("a join after a stale one: %v", err)
	}
	members, err := cl.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range members.Members {
		ids = append(ids, m.ID)
	}
	if len(ids) != 2 || !strings.Contains(strings.Join(ids, ","), third.Member.ID) || strings.Contains(strings.Join(ids, ","), first.Member.ID) {
		t.Errorf("members = %v, want n1 and %s (not the stale %s)", ids, third.Member.ID, first.Member.ID)
	}
}

func TestInitialCluster(t *testing.T) {
	members := []*discoverd.EtcdMember{
		{ID: "a", Name: "n1", PeerURLs: []string{"https://10.0.0.1:1122"}},
		{ID: "b", PeerURLs: []string{"https://10.0.0.2:1122"}},
		{ID: "c", PeerURLs: []string{"https://10.0.0.3:1122"}},
	}
	got := initialCluster(members, "c", "n3")
	want := "n1=https://10.0.0.1:1122,unstarted-b=https://10.0.0.2:1122,n3=https://10.0.0.3:1122"
	if got != want {
		t.Errorf("initialCluster = %s, want %s", got, want)
	}
}

// A member whose node's address changed serves its peers at the new one.
func TestUpdatePeerURL(t *testing.T) {
	testdeps.Short(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	clientAddr := freeAddr(t)
	e, err := StartEmbedded(ctx, EmbeddedConfig{DataDir: dir, ClientAddr: clientAddr, PeerAddr: freeAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	e, err = StartEmbedded(ctx, EmbeddedConfig{DataDir: dir, ClientAddr: clientAddr, PeerAddr: freeAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.UpdatePeerURL(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := Dial(ctx, e.Endpoints(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, err := NewCluster(c, "").Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Members) != 1 || strings.Join(m.Members[0].PeerURLs, ",") != e.PeerURL() {
		t.Errorf("members = %+v, want one with peer URL %s", m.Members[0], e.PeerURL())
	}
}

func sortedCluster(s string) string {
	parts := strings.Split(s, ",")
	slices.Sort(parts)
	return strings.Join(parts, ",")
}
