package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openflynn/flynn/discoverd/store"
)

// Config configures a discoverd process.
type Config struct {
	// HTTPAddr is where the HTTP API listens; default ":1111".
	HTTPAddr string
	// DNSAddr is where DNS listens (UDP and TCP); empty disables DNS.
	DNSAddr string
	// Recursors resolve names outside the discoverd zone; empty refuses them.
	Recursors []string
	// EtcdEndpoints selects an external etcd cluster; empty runs an
	// embedded single-node etcd with its data under DataDir.
	EtcdEndpoints []string
	// DataDir holds the embedded etcd's data; required without
	// EtcdEndpoints.
	DataDir string
	// EtcdClientAddr and EtcdPeerAddr are the embedded etcd's listen
	// addresses; defaults 127.0.0.1:2379 and 127.0.0.1:2380.
	EtcdClientAddr string
	EtcdPeerAddr   string
	// KeyPrefix namespaces discoverd's keys in etcd; default "/discoverd".
	KeyPrefix string
	// AuthKey, when set, is required (as the basic-auth password) on writes.
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
	endpoints := cfg.EtcdEndpoints
	var etcdTLS *tls.Config
	if len(endpoints) == 0 {
		if cfg.DataDir == "" {
			return errors.New("discoverd: --data-dir is required for the embedded etcd (or give --etcd-endpoints)")
		}
		e, err := store.StartEmbedded(ctx, store.EmbeddedConfig{
			DataDir:    filepath.Join(cfg.DataDir, "etcd"),
			ClientAddr: cfg.EtcdClientAddr,
			PeerAddr:   cfg.EtcdPeerAddr,
			ClusterKey: cfg.AuthKey,
		})
		if err != nil {
			return err
		}
		defer e.Close()
		endpoints, etcdTLS = e.Endpoints(), e.ClientTLS()
		logger.Info("embedded etcd started", "endpoints", strings.Join(endpoints, ","), "dir", cfg.DataDir)
	}
	etcd, err := store.Dial(ctx, endpoints, etcdTLS)
	if err != nil {
		return err
	}
	defer etcd.Close()
	if err := waitEtcd(ctx, etcd); err != nil {
		return err
	}
	st := store.New(etcd, cfg.KeyPrefix)

	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("discoverd: listen %s: %w", cfg.HTTPAddr, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{
		Handler: NewAPI(st, cfg.AuthKey, logger),
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
		udp, err := net.ListenPacket("udp", cfg.DNSAddr)
		if err != nil {
			srv.Close()
			return fmt.Errorf("discoverd: dns listen udp %s: %w", cfg.DNSAddr, err)
		}
		// TCP on the port UDP got, so ":0" yields one port for both.
		tcp, err := net.Listen("tcp", udp.LocalAddr().String())
		if err != nil {
			udp.Close()
			srv.Close()
			return fmt.Errorf("discoverd: dns listen tcp %s: %w", cfg.DNSAddr, err)
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
