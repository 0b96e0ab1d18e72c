package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/storage/wal"

	"github.com/openflynn/flynn/discoverd"
)

// EmbeddedConfig configures the etcd member inside discoverd.
type EmbeddedConfig struct {
	// Name is the etcd member name; default "discoverd". It must be
	// unique in the cluster: the node's host id.
	Name string
	// DataDir holds etcd's data; required.
	DataDir string
	// ClientAddr is the host:port etcd serves clients on; default
	// 127.0.0.1:2379.
	ClientAddr string
	// PeerAddr is the host:port for etcd peers; default 127.0.0.1:2380.
	PeerAddr string
	// ClusterKey, when set, makes the client and peer ports speak TLS and
	// accept only clients with a certificate of the cluster's etcd CA
	// (derived from the key): discoverd and the other members alone.
	// Without it the ports are plain and open to anything that can reach
	// them.
	ClusterKey string
	// InitialCluster, when set, makes this member join an existing
	// cluster that has added it already (POST /etcd/members): etcd's
	// --initial-cluster, name=peerURL of every member, with
	// --initial-cluster-state existing. Empty starts a new single-member
	// cluster. Either is ignored, as etcd does, when DataDir holds a
	// member already: it starts again as it was.
	InitialCluster string
	// ReadyTimeout bounds the wait until etcd serves; default 60s.
	// Negative waits until ctx ends: a member of a cluster serves only
	// once a quorum of its peers is back, which may take a while after a
	// whole cluster went down.
	ReadyTimeout time.Duration
	// Logger receives etcd's warnings and errors (and, at debug, its
	// other lines) with component=etcd; nil discards them.
	Logger *slog.Logger
}

// HasMember reports whether dataDir holds an etcd member's data, as etcd
// decides it: a write-ahead log. A directory without one (a join that
// failed before etcd wrote its log) holds nothing to keep.
func HasMember(dataDir string) bool {
	return wal.Exist(filepath.Join(dataDir, "member", "wal"))
}

// EtcdURL is the URL an embedded etcd with this cluster key serves its
// clients or its peers on at addr: https with a key.
func EtcdURL(addr, clusterKey string) string {
	u := etcdURL(addr, clusterKey)
	return u.String()
}

func etcdURL(addr, clusterKey string) url.URL {
	if clusterKey != "" {
		return url.URL{Scheme: "https", Host: addr}
	}
	return url.URL{Scheme: "http", Host: addr}
}

// Embedded is a running in-process etcd member.
type Embedded struct {
	etcd   *embed.Etcd
	tls    *tls.Config
	logger *slog.Logger
}

// StartEmbedded starts an etcd member and waits until it serves.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("embedded etcd: data dir is required")
	}
	if cfg.Name == "" {
		cfg.Name = "discoverd"
	}
	if cfg.ClientAddr == "" {
		cfg.ClientAddr = "127.0.0.1:2379"
	}
	if cfg.PeerAddr == "" {
		cfg.PeerAddr = "127.0.0.1:2380"
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 60 * time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.DataDir
	clientURL := etcdURL(cfg.ClientAddr, cfg.ClusterKey)
	peerURL := etcdURL(cfg.PeerAddr, cfg.ClusterKey)
	var clientTLS *tls.Config
	if cfg.ClusterKey != "" {
		t, err := newEtcdTLS(filepath.Join(cfg.DataDir, "tls"), cfg.ClusterKey, cfg.ClientAddr, cfg.PeerAddr)
		if err != nil {
			return nil, fmt.Errorf("embedded etcd: %w", err)
		}
		info := transport.TLSInfo{CertFile: t.CertFile, KeyFile: t.KeyFile, TrustedCAFile: t.CAFile, ClientCertAuth: true}
		ec.ClientTLSInfo = info
		// Peers present the same certificate as clients of each other:
		// only members of this cluster's CA join the raft.
		ec.PeerTLSInfo = info
		clientTLS = t.Client
	}
	ec.ListenClientUrls = []url.URL{clientURL}
	ec.AdvertiseClientUrls = []url.URL{clientURL}
	ec.ListenPeerUrls = []url.URL{peerURL}
	ec.AdvertisePeerUrls = []url.URL{peerURL}
	ec.InitialCluster = fmt.Sprintf("%s=%s", cfg.Name, peerURL.String())
	if cfg.InitialCluster != "" {
		ec.InitialCluster = cfg.InitialCluster
		ec.ClusterState = embed.ClusterStateFlagExisting
	}
	// embed leaves it zero, which logs every request as a slow one.
	ec.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration
	ec.LogLevel = "warn"
	ec.Logger = "zap"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newZapLogger(logger))
	// Keep the database small: discoverd's history is only heartbeats.
	ec.AutoCompactionMode = "periodic"
	ec.AutoCompactionRetention = "5m"
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	var timeout <-chan time.Time
	if cfg.ReadyTimeout > 0 {
		t := time.NewTimer(cfg.ReadyTimeout)
		defer t.Stop()
		timeout = t.C
	}
	waiting := time.NewTicker(30 * time.Second)
	defer waiting.Stop()
	for {
		select {
		case <-e.Server.ReadyNotify():
			return &Embedded{etcd: e, tls: clientTLS, logger: logger}, nil
		case err := <-e.Err():
			e.Close()
			return nil, fmt.Errorf("embedded etcd: %w", err)
		case <-e.Server.StopNotify():
			e.Close()
			return nil, errors.New("embedded etcd stopped before it served (removed from its cluster?)")
		case <-timeout:
			e.Close()
			return nil, fmt.Errorf("embedded etcd not ready after %s", cfg.ReadyTimeout)
		case <-waiting.C:
			logger.Warn("embedded etcd waits for a quorum of its cluster's members", "member", cfg.Name)
		case <-ctx.Done():
			e.Close()
			return nil, ctx.Err()
		}
	}
}

// ClientTLS is the TLS configuration clients of this etcd need: nil when
// it serves plain HTTP.
func (e *Embedded) ClientTLS() *tls.Config { return e.tls }

// Endpoints returns the client URLs of the embedded etcd.
func (e *Embedded) Endpoints() []string {
	var eps []string
	for _, u := range e.etcd.Config().ListenClientUrls {
		eps = append(eps, u.String())
	}
	return eps
}

// PeerURL returns the URL the member serves its peers on.
func (e *Embedded) PeerURL() string { return e.etcd.Config().AdvertisePeerUrls[0].String() }

// MemberID returns the member's etcd id.
func (e *Embedded) MemberID() uint64 { return uint64(e.etcd.Server.MemberID()) }

// ClusterID returns the etcd cluster's id.
func (e *Embedded) ClusterID() uint64 { return uint64(e.etcd.Server.Cluster().ID()) }

// Learner reports whether the member is a learner, which does not vote
// and refuses most requests.
func (e *Embedded) Learner() bool { return e.etcd.Server.IsLearner() }

// Members returns the membership as this member knows it (no request: a
// learner answers too).
func (e *Embedded) Members() *discoverd.EtcdMembers {
	out := &discoverd.EtcdMembers{ClusterID: FormatID(e.ClusterID())}
	for _, m := range e.etcd.Server.Cluster().Members() {
		out.Members = append(out.Members, &discoverd.EtcdMember{
			ID:         FormatID(uint64(m.ID)),
			Name:       m.Name,
			PeerURLs:   slices.Clone(m.PeerURLs),
			ClientURLs: slices.Clone(m.ClientURLs),
			Learner:    m.IsLearner,
		})
	}
	return out
}

// Err returns a channel that receives a fatal etcd error.
func (e *Embedded) Err() <-chan error { return e.etcd.Err() }

// Stopped is closed when the member's server stops, as it does on its own
// when the cluster removed the member.
func (e *Embedded) Stopped() <-chan struct{} { return e.etcd.Server.StopNotify() }

// Close stops etcd.
func (e *Embedded) Close() { e.etcd.Close() }

// Promote makes a learner a voting member: it asks the voting members
// until the leader finds it caught up. It returns at once for a voting
// member.
func (e *Embedded) Promote(ctx context.Context) error {
	if !e.Learner() {
		return nil
	}
	var c *clientv3.Client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	start, lastLog := time.Now(), time.Now()
	for e.Learner() {
		// A learner refuses MemberPromote: ask the voting members.
		eps := e.Members().ClientURLs()
		if c == nil && len(eps) > 0 {
			var err error
			if c, err = Dial(ctx, eps, e.tls, e.logger); err != nil {
				return err
			}
		} else if c != nil {
			c.SetEndpoints(eps...)
		}
		if c != nil {
			reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := c.MemberPromote(reqCtx, e.MemberID())
			cancel()
			// Promoted (or promoted already), the change reaches this
			// member's own view when it applies it; not ready, the
			// learner is still catching up.
			if err != nil && !errors.Is(err, rpctypes.ErrMemberNotLearner) && time.Since(lastLog) > 30*time.Second {
				lastLog = time.Now()
				e.logger.Warn("etcd learner not promoted yet", "waited", time.Since(start).Round(time.Second), "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.Stopped():
			return errors.New("embedded etcd stopped while a learner")
		case <-tick.C:
		}
	}
	return nil
}

// UpdatePeerURL corrects the member's peer URL in the cluster when it no
// longer is the one the member serves on: a node whose address changed,
// or a single-node cluster from before peers spoke TLS. Peers (and members
// that join later) reach the member at the URL the cluster holds.
func (e *Embedded) UpdatePeerURL(ctx context.Context) error {
	want := e.PeerURL()
	for _, m := range e.Members().Members {
		if m.ID != FormatID(e.MemberID()) || slices.Equal(m.PeerURLs, []string{want}) {
			continue
		}
		c, err := Dial(ctx, e.Endpoints(), e.tls, e.logger)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.MemberUpdate(ctx, e.MemberID(), []string{want}); err != nil {
			return fmt.Errorf("update peer URL of etcd member %s from %v to %s: %w", m.Name, m.PeerURLs, want, err)
		}
		e.logger.Info("etcd member's peer URL updated", "member", m.Name, "from", m.PeerURLs, "to", want)
	}
	return nil
}

// FormatID writes an etcd member or cluster id as etcd does: hex.
func FormatID(id uint64) string { return strconv.FormatUint(id, 16) }

// ParseID reads an id written by FormatID.
func ParseID(s string) (uint64, error) { return strconv.ParseUint(s, 16, 64) }

// Dial connects an etcd client to endpoints; tlsConfig is nil for plain
// HTTP endpoints. The client's warnings and errors go to logger (nil
// discards them), as the embedded member's do.
func Dial(ctx context.Context, endpoints []string, tlsConfig *tls.Config, logger *slog.Logger) (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Context:     ctx,
		Logger:      newZapLogger(logger).Named("client"),
		TLS:         tlsConfig,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", endpoints, err)
	}
	return c, nil
}
