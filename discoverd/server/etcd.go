package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/store"
)

// etcdConn is this discoverd's etcd: the client it works with and, on a
// member, the embedded member.
type etcdConn struct {
	client *clientv3.Client
	// member is nil on a client discoverd and with an operator's etcd.
	member *store.Embedded
	// cluster manages the membership; nil with an operator's etcd.
	cluster *store.Cluster

	stopSync context.CancelFunc
	syncDone chan struct{}
}

// Close stops following the member list, and the member.
func (c *etcdConn) Close() {
	if c.stopSync != nil {
		c.stopSync()
		<-c.syncDone
	}
	c.client.Close()
	if c.member != nil {
		c.member.Close()
	}
}

// memberErr and memberStopped report the end of the embedded member;
// they never fire on a discoverd without one.
func (c *etcdConn) memberErr() <-chan error {
	if c.member == nil {
		return nil
	}
	return c.member.Err()
}

func (c *etcdConn) memberStopped() <-chan struct{} {
	if c.member == nil {
		return nil
	}
	return c.member.Stopped()
}

// connectEtcd starts or finds this discoverd's etcd:
//
//   - with Config.EtcdEndpoints, the operator's etcd;
//   - with a member in the data dir, that member again (a member rejoins
//     its cluster and catches up), unless a join target's cluster no
//     longer has it: then its data is moved aside and the discoverd joins
//     anew;
//   - with a client's record, the members it knew (or a join target
//     knows);
//   - else the cluster of its join targets: a member while the cluster has
//     fewer than discoverd.MaxEtcdMembers, a client after; with no target
//     to join, a new single-member cluster.
func connectEtcd(ctx context.Context, cfg Config, logger *slog.Logger) (*etcdConn, error) {
	if len(cfg.EtcdEndpoints) > 0 {
		c, err := store.Dial(ctx, cfg.EtcdEndpoints, nil, logger)
		if err != nil {
			return nil, err
		}
		return &etcdConn{client: c}, nil
	}
	if cfg.DataDir == "" {
		return nil, errors.New("discoverd: --data-dir is required for the embedded etcd (or give --etcd-endpoints)")
	}
	st, err := readNodeState(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	j, err := newJoiner(cfg.Join, cfg.HTTPAddr, cfg.AuthKey, cfg.JoinTimeout, logger)
	if err != nil {
		return nil, err
	}
	etcdDir := filepath.Join(cfg.DataDir, "etcd")
	switch {
	case st.Role == roleClient:
		eps := st.Endpoints
		if m, _, err := j.members(ctx); err == nil && (st.ClusterID == "" || m.ClusterID == st.ClusterID) && len(m.ClientURLs()) > 0 {
			eps = m.ClientURLs()
		}
		return startClient(ctx, cfg, st.ClusterID, eps, logger)
	case store.HasMember(etcdDir):
		if !j.removed(ctx, st) {
			return startMember(ctx, cfg, "", logger)
		}
		aside := etcdDir + ".removed"
		logger.Warn("this etcd member was removed from its cluster while away: joining anew", "member", st.MemberID, "old_data", aside)
		if err := os.RemoveAll(aside); err != nil {
			return nil, err
		}
		if err := os.Rename(etcdDir, aside); err != nil {
			return nil, fmt.Errorf("move the removed member's data aside: %w", err)
		}
	default:
		// What an earlier join left before etcd wrote its log: nothing
		// to keep, and in a fresh member's way.
		if err := os.RemoveAll(etcdDir); err != nil {
			return nil, err
		}
	}

	for {
		members, target, err := j.find(ctx)
		if errors.Is(err, errNoCluster) {
			return startMember(ctx, cfg, "", logger)
		}
		if err != nil {
			return nil, err
		}
		if len(members.Members) >= discoverd.MaxEtcdMembers {
			return startClient(ctx, cfg, members.ClusterID, members.ClientURLs(), logger)
		}
		peerURL, err := joinablePeerURL(cfg)
		if err != nil {
			return nil, err
		}
		joined, err := j.add(ctx, target, &discoverd.EtcdMemberAdd{Name: cfg.Name, PeerURL: peerURL})
		switch {
		case err == nil:
			logger.Info("joining the etcd cluster", "through", target.URL(), "member", joined.Member.ID, "initial_cluster", joined.InitialCluster)
			return startMember(ctx, cfg, joined.InitialCluster, logger)
		case errors.Is(err, errClusterFull), errors.Is(err, errTargetLost):
			// Another node took the last seat first (this one will be
			// a client), or the target went away: ask again.
			continue
		default:
			return nil, err
		}
	}
}

// joinablePeerURL is the peer URL this node's member will have: one that
// other nodes reach.
func joinablePeerURL(cfg Config) (string, error) {
	host, _, err := net.SplitHostPort(cfg.EtcdPeerAddr)
	if err != nil {
		return "", fmt.Errorf("etcd peer address %q: %w", cfg.EtcdPeerAddr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "", fmt.Errorf("etcd peer address %q: to join a cluster it must be this node's address (--external-ip or --etcd-peer-addr)", cfg.EtcdPeerAddr)
	}
	return store.EtcdURL(cfg.EtcdPeerAddr, cfg.AuthKey), nil
}

// removed reports whether a join target's cluster is this member's and no
// longer has it. When no target answers, or one of another cluster, the
// member starts as it was: it cannot tell.
func (j *joiner) removed(ctx context.Context, st *nodeState) bool {
	if st.MemberID == "" || len(j.targets) == 0 {
		return false
	}
	m, _, err := j.members(ctx)
	if err != nil {
		return false
	}
	if m.ClusterID != st.ClusterID {
		j.logger.Warn("join targets are of another etcd cluster than this member's", "member_cluster", st.ClusterID, "their_cluster", m.ClusterID)
		return false
	}
	return !slices.ContainsFunc(m.Members, func(mem *discoverd.EtcdMember) bool { return mem.ID == st.MemberID })
}

// startMember starts this node's etcd member: initialCluster joins the
// cluster that added it; empty starts the member in the data dir again,
// or a new single-member cluster.
func startMember(ctx context.Context, cfg Config, initialCluster string, logger *slog.Logger) (*etcdConn, error) {
	etcdDir := filepath.Join(cfg.DataDir, "etcd")
	ecfg := store.EmbeddedConfig{
		Name:           cfg.Name,
		DataDir:        etcdDir,
		ClientAddr:     cfg.EtcdClientAddr,
		PeerAddr:       cfg.EtcdPeerAddr,
		ClusterKey:     cfg.AuthKey,
		InitialCluster: initialCluster,
		Logger:         logger,
	}
	if store.HasMember(etcdDir) || initialCluster != "" {
		// A member of a cluster serves once a quorum of its peers does,
		// however long that takes.
		ecfg.ReadyTimeout = -1
	}
	e, err := store.StartEmbedded(ctx, ecfg)
	if err != nil {
		return nil, err
	}
	if e.Learner() {
		logger.Info("etcd learner catching up")
		if err := e.Promote(ctx); err != nil {
			e.Close()
			return nil, fmt.Errorf("promote etcd learner: %w", err)
		}
	}
	if err := e.UpdatePeerURL(ctx); err != nil {
		logger.Warn("etcd member's peer URL", "err", err)
	}
	st := &nodeState{Role: roleMember, ClusterID: store.FormatID(e.ClusterID()), MemberID: store.FormatID(e.MemberID()), Name: cfg.Name, PeerURL: e.PeerURL()}
	if err := writeNodeState(cfg.DataDir, st); err != nil {
		e.Close()
		return nil, err
	}
	c, err := store.Dial(ctx, e.Endpoints(), e.ClientTLS(), logger)
	if err != nil {
		e.Close()
		return nil, err
	}
	logger.Info("etcd member started", "member", st.MemberID, "name", cfg.Name, "cluster", st.ClusterID, "endpoints", strings.Join(e.Endpoints(), ","), "dir", etcdDir)
	return &etcdConn{client: c, member: e, cluster: store.NewCluster(c, cfg.KeyPrefix)}, nil
}

// startClient connects to the members at endpoints, and follows the member
// list so that a member replaced by another is followed too.
func startClient(ctx context.Context, cfg Config, clusterID string, endpoints []string, logger *slog.Logger) (*etcdConn, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("discoverd: no etcd member to be a client of: give a join target (--join)")
	}
	var tlsConfig *tls.Config
	if cfg.AuthKey != "" {
		var err error
		if tlsConfig, err = store.ClientTLS(cfg.AuthKey); err != nil {
			return nil, err
		}
	}
	c, err := store.Dial(ctx, endpoints, tlsConfig, logger)
	if err != nil {
		return nil, err
	}
	st := &nodeState{Role: roleClient, ClusterID: clusterID, Endpoints: endpoints}
	if err := writeNodeState(cfg.DataDir, st); err != nil {
		c.Close()
		return nil, err
	}
	logger.Info("etcd client of the members", "endpoints", strings.Join(endpoints, ","))
	syncCtx, stop := context.WithCancel(ctx)
	conn := &etcdConn{client: c, cluster: store.NewCluster(c, cfg.KeyPrefix), stopSync: stop, syncDone: make(chan struct{})}
	go func() {
		defer close(conn.syncDone)
		followMembers(syncCtx, c, cfg.DataDir, st, cfg.EndpointSyncInterval, logger)
	}()
	return conn, nil
}

// followMembers keeps a client's endpoints those of the members, every
// interval, and records them for its next start.
func followMembers(ctx context.Context, c *clientv3.Client, dataDir string, st *nodeState, interval time.Duration, logger *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.Sync(reqCtx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				logger.Warn("follow the etcd member list", "err", err)
			}
			continue
		}
		eps := slices.Sorted(slices.Values(c.Endpoints()))
		if slices.Equal(eps, st.Endpoints) {
			continue
		}
		logger.Info("etcd members changed", "endpoints", strings.Join(eps, ","))
		st.Endpoints = eps
		if err := writeNodeState(dataDir, st); err != nil {
			logger.Warn("record etcd endpoints", "err", err)
		}
	}
}
