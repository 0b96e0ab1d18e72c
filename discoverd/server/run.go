package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openflynn/flynn/discoverd/store"
	"github.com/openflynn/flynn/pkg/metrics"
)

// Config configures a discoverd process.
type Config struct {
	// HTTPAddr is where the HTTP API, and its /metrics, listen; default
	// ":1111". On a node, its address: several nodes' discoverds may
	// share a machine.
	HTTPAddr string
	// DNSAddr is where DNS listens (UDP and TCP); empty disables DNS.
	DNSAddr string
	// Recursors resolve names outside the discoverd zone; empty refuses them.
	Recursors []string
	// EtcdEndpoints selects an external etcd cluster, which discoverd
	// uses and does not manage; empty runs an embedded etcd member (or a
	// client of other discoverds' members) with its data under DataDir.
	EtcdEndpoints []string
	// DataDir holds the embedded etcd's data and the discoverd's role in
	// the etcd cluster (etcd-node.json); required without EtcdEndpoints.
	DataDir string
	// EtcdClientAddr and EtcdPeerAddr are the embedded etcd's listen
	// addresses; defaults 127.0.0.1:2379 and 127.0.0.1:2380. To join a
	// cluster of several nodes the peer address must be the node's.
	EtcdClientAddr string
	EtcdPeerAddr   string
	// Name is the node's etcd member name, unique in the cluster (the
	// host id); default "discoverd".
	Name string
	// Join lists other discoverds (URLs, host:port or host) whose etcd
	// cluster this one joins when its data dir holds no member: as a
	// member while the cluster has fewer than discoverd.MaxEtcdMembers, as
	// a client of the members after. Empty founds a new cluster.
	Join []string
	// JoinTimeout is how long a discoverd none of whose join targets
	// answers waits before it founds a new cluster, which it does only if
	// its HTTPAddr sorts before theirs (discoverds that start together
	// found one cluster); default 30s.
	JoinTimeout time.Duration
	// EndpointSyncInterval is how often a client discoverd follows the
	// etcd member list; default 30s.
	EndpointSyncInterval time.Duration
	// KeyPrefix namespaces discoverd's keys in etcd; default "/discoverd".
	KeyPrefix string
	// AuthKey, when set, is required (as the basic-auth password) on
	// writes and the /etcd routes, and makes the embedded etcd's ports
	// speak TLS with certificates of a CA derived from it.
	AuthKey string
	// Ready, when set, receives the bound HTTP and DNS addresses once
	// discoverd serves.
	Ready func(httpAddr, dnsAddr string)
}

// Run serves discoverd until ctx ends.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = ":1111"
	}
	if cfg.EtcdClientAddr == "" {
		cfg.EtcdClientAddr = "127.0.0.1:2379"
	}
	if cfg.EtcdPeerAddr == "" {
		cfg.EtcdPeerAddr = "127.0.0.1:2380"
	}
	if cfg.Name == "" {
		cfg.Name = "discoverd"
	}
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = 30 * time.Second
	}
	if cfg.EndpointSyncInterval <= 0 {
		cfg.EndpointSyncInterval = 30 * time.Second
	}
	conn, err := connectEtcd(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := waitEtcd(ctx, conn.client); err != nil {
		return err
	}
	reg := metrics.NewRegistry()
	st := store.New(conn.client, cfg.KeyPrefix)
	st.Observe = observeEtcd(reg)
	reg.MustRegister(newInstancesCollector(st, logger))
	registerMember(reg, conn.member != nil)
	var cluster Cluster
	if conn.cluster != nil {
		cluster = conn.cluster
	}

	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("discoverd: listen %s: %w", cfg.HTTPAddr, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{
		Handler: NewAPI(st, cluster, cfg.AuthKey, reg, logger),
		// Requests share ctx, so shutting down ends watch streams at once.
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(httpLn) }()

	dnsAddr := ""
	dnsDone := make(chan struct{})
	if cfg.DNSAddr != "" {
		udp, tcp, err := listenDNS(cfg.DNSAddr)
		if err != nil {
			srv.Close()
			return fmt.Errorf("discoverd: dns: %w", err)
		}
		dnsAddr = udp.LocalAddr().String()
		go func() {
			defer close(dnsDone)
			if err := ServeDNS(ctx, udp, tcp, &DNS{Store: st, Logger: logger, Recursors: cfg.Recursors}); err != nil {
				errc <- err
			}
		}()
	} else {
		close(dnsDone)
	}
	logger.Info("discoverd serving", "http", httpLn.Addr().String(), "dns", dnsAddr)
	if cfg.Ready != nil {
		cfg.Ready(httpLn.Addr().String(), dnsAddr)
	}

	select {
	case <-ctx.Done():
		err = nil
	case err = <-errc:
	case err = <-conn.memberErr():
		err = fmt.Errorf("discoverd: embedded etcd: %w", err)
	case <-conn.memberStopped():
		// Removed from the cluster, most likely: the next start finds
		// out and joins anew.
		err = errors.New("discoverd: embedded etcd stopped")
	}
	cancel()
	shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if shutdownErr := srv.Shutdown(shutdownCtx); shutdownErr != nil {
		srv.Close()
	}
	<-dnsDone
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// waitEtcd waits until etcd answers, so the first requests do not fail.
func waitEtcd(ctx context.Context, etcd *clientv3.Client) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		reqCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := etcd.Get(reqCtx, "/discoverd-health")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("discoverd: etcd does not answer: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}
