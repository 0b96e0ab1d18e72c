package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/openflynn/flynn/discoverd"
)

// Errors of Cluster.AddMember; the HTTP layer maps them to API errors.
var (
	// ErrClusterFull: the cluster has discoverd.MaxEtcdMembers members
	// already; the node runs as a client of them.
	ErrClusterFull = errors.New("the etcd cluster has all its members")
	// ErrMemberNameTaken: another member has the name (another node with
	// the same host id).
	ErrMemberNameTaken = errors.New("another etcd member has this name")
	// ErrJoinBusy: the cluster cannot take a member now (another one is
	// catching up, or a member is down and a change would lose quorum);
	// the node asks again.
	ErrJoinBusy = errors.New("the etcd cluster cannot add a member now")
)

// Cluster manages the membership of the etcd cluster under discoverd. Nodes
// join as learners, which do not count towards quorum until they have
// caught up and promote themselves (Embedded.Promote): a node that dies
// while it joins leaves the cluster serving.
type Cluster struct {
	// StaleJoinAfter is how long a member added by AddMember may take to
	// start before a later join removes it: its node died between the add
	// and the start, and its learner would block every later join.
	// Default 2 minutes.
	StaleJoinAfter time.Duration

	etcd   *clientv3.Client
	prefix string
}

// NewCluster returns the membership of etcd's cluster. prefix is
// discoverd's key prefix ("/discoverd" when empty); the join lock and the
// time each learner was added live under <prefix>/etcd/.
func NewCluster(etcd *clientv3.Client, prefix string) *Cluster {
	if prefix == "" {
		prefix = "/discoverd"
	}
	return &Cluster{StaleJoinAfter: 2 * time.Minute, etcd: etcd, prefix: strings.TrimSuffix(prefix, "/") + "/etcd"}
}

func (c *Cluster) joinKey(id uint64) string { return c.prefix + "/joins/" + FormatID(id) }

// Members lists the cluster's members.
func (c *Cluster) Members(ctx context.Context) (*discoverd.EtcdMembers, error) {
	resp, err := c.etcd.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list etcd members: %w", err)
	}
	out := &discoverd.EtcdMembers{ClusterID: FormatID(resp.Header.ClusterId)}
	for _, m := range resp.Members {
		out.Members = append(out.Members, memberOf(m))
	}
	return out, nil
}

func memberOf(m *pb.Member) *discoverd.EtcdMember {
	return &discoverd.EtcdMember{
		ID:         FormatID(m.ID),
		Name:       m.Name,
		PeerURLs:   slices.Clone(m.PeerURLs),
		ClientURLs: slices.Clone(m.ClientURLs),
		Learner:    m.IsLearner,
	}
}

// AddMember adds the node named name, whose member will serve its peers at
// peerURL, as a learner, when the cluster has fewer than
// discoverd.MaxEtcdMembers members. A node that asks again before its
// member started gets the same answer; a node that comes back without its
// data replaces its old member.
func (c *Cluster) AddMember(ctx context.Context, name, peerURL string) (*discoverd.EtcdJoin, error) {
	// One join at a time across every discoverd, so that two nodes cannot
	// both take the last seat.
	sess, err := concurrency.NewSession(c.etcd, concurrency.WithContext(ctx), concurrency.WithTTL(10))
	if err != nil {
		return nil, fmt.Errorf("etcd join lock: %w", err)
	}
	defer sess.Close()
	if err := concurrency.NewMutex(sess, c.prefix+"/join-lock").Lock(ctx); err != nil {
		return nil, fmt.Errorf("etcd join lock: %w", err)
	}

	list, err := c.Members(ctx)
	if err != nil {
		return nil, err
	}
	joins, err := c.etcd.Get(ctx, c.prefix+"/joins/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd joins: %w", err)
	}
	addedAt := map[string]time.Time{}
	for _, kv := range joins.Kvs {
		t, _ := time.Parse(time.RFC3339Nano, string(kv.Value))
		addedAt[strings.TrimPrefix(string(kv.Key), c.prefix+"/joins/")] = t
	}

	var members []*discoverd.EtcdMember
	for _, m := range list.Members {
		switch {
		case slices.Contains(m.PeerURLs, peerURL) && !m.Started():
			// Asked again before its member started: same answer.
			return &discoverd.EtcdJoin{ClusterID: list.ClusterID, Member: m, InitialCluster: initialCluster(list.Members, m.ID, name)}, nil
		case slices.Contains(m.PeerURLs, peerURL):
			// The node lost its data: its old member will not be back.
			if err := c.removeMember(ctx, m); err != nil {
				return nil, err
			}
			continue
		case m.Name == name:
			return nil, fmt.Errorf("%w: %s (%s)", ErrMemberNameTaken, name, strings.Join(m.PeerURLs, ","))
		case !m.Started() && time.Since(addedAt[m.ID]) > c.StaleJoinAfter:
			// Added, never started: its node is gone.
			if err := c.removeMember(ctx, m); err != nil {
				return nil, err
			}
			continue
		}
		members = append(members, m)
	}
	if len(members) >= discoverd.MaxEtcdMembers {
		return nil, ErrClusterFull
	}

	resp, err := c.etcd.MemberAddAsLearner(ctx, []string{peerURL})
	switch {
	case errors.Is(err, rpctypes.ErrTooManyLearners), errors.Is(err, rpctypes.ErrUnhealthy):
		return nil, fmt.Errorf("%w: %w", ErrJoinBusy, err)
	case err != nil:
		return nil, fmt.Errorf("add etcd member %s: %w", peerURL, err)
	}
	if _, err := c.etcd.Put(ctx, c.joinKey(resp.Member.ID), time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return nil, fmt.Errorf("record etcd join: %w", err)
	}
	// Forget the joins of members that have started or are gone.
	current := map[string]bool{}
	for _, m := range resp.Members {
		if m.Name == "" {
			current[FormatID(m.ID)] = true
		}
	}
	for id := range addedAt {
		if !current[id] {
			_, _ = c.etcd.Delete(ctx, c.prefix+"/joins/"+id)
		}
	}

	all := make([]*discoverd.EtcdMember, 0, len(resp.Members))
	for _, m := range resp.Members {
		all = append(all, memberOf(m))
	}
	added := memberOf(resp.Member)
	return &discoverd.EtcdJoin{
		ClusterID:      FormatID(resp.Header.ClusterId),
		Member:         added,
		InitialCluster: initialCluster(all, added.ID, name),
	}, nil
}

func (c *Cluster) removeMember(ctx context.Context, m *discoverd.EtcdMember) error {
	id, err := ParseID(m.ID)
	if err != nil {
		return err
	}
	_, err = c.etcd.MemberRemove(ctx, id)
	switch {
	case errors.Is(err, rpctypes.ErrUnhealthy):
		// Removing it would cost the quorum: another member is down.
		return fmt.Errorf("%w: remove member %s: %w", ErrJoinBusy, m.ID, err)
	case err != nil && !errors.Is(err, rpctypes.ErrMemberNotFound):
		return fmt.Errorf("remove etcd member %s (%s): %w", m.ID, strings.Join(m.PeerURLs, ","), err)
	}
	_, _ = c.etcd.Delete(ctx, c.joinKey(id))
	return nil
}

// initialCluster is etcd's --initial-cluster for the new member newID
// named name: name=peerURL of every member. etcd matches the members it
// finds by their peer URLs, so a member that has not started (it has no
// name yet) gets a placeholder name.
func initialCluster(members []*discoverd.EtcdMember, newID, name string) string {
	var parts []string
	for _, m := range members {
		n := m.Name
		switch {
		case m.ID == newID:
			n = name
		case n == "":
			n = "unstarted-" + m.ID
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, n+"="+u)
		}
	}
	return strings.Join(parts, ",")
}
