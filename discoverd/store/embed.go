package store

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// EmbeddedConfig configures a single-node etcd inside discoverd.
type EmbeddedConfig struct {
	// Name is the etcd member name; default "discoverd".
	Name string
	// DataDir holds etcd's data; required.
	DataDir string
	// ClientAddr is the host:port etcd serves clients on; default
	// 127.0.0.1:2379.
	ClientAddr string
	// PeerAddr is the host:port for etcd peers; default 127.0.0.1:2380.
	PeerAddr string
	// ClusterKey, when set, makes the client port speak TLS and accept
	// only clients with a certificate of the cluster's etcd CA (derived
	// from the key): discoverd alone. Without it the port is plain and
	// open to anything that can reach it.
	ClusterKey string
}

// Embedded is a running in-process etcd.
type Embedded struct {
	etcd *embed.Etcd
	tls  *tls.Config
}

// StartEmbedded starts a single-node etcd and waits until it serves.
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
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.DataDir
	clientURL := url.URL{Scheme: "http", Host: cfg.ClientAddr}
	var clientTLS *tls.Config
	if cfg.ClusterKey != "" {
		t, err := newEtcdTLS(filepath.Join(cfg.DataDir, "tls"), cfg.ClusterKey, cfg.ClientAddr)
		if err != nil {
			return nil, fmt.Errorf("embedded etcd: %w", err)
		}
		clientURL.Scheme = "https"
		ec.ClientTLSInfo = transport.TLSInfo{CertFile: t.CertFile, KeyFile: t.KeyFile, TrustedCAFile: t.CAFile, ClientCertAuth: true}
		clientTLS = t.Client
	}
	peerURL := url.URL{Scheme: "http", Host: cfg.PeerAddr}
	ec.ListenClientUrls = []url.URL{clientURL}
	ec.AdvertiseClientUrls = []url.URL{clientURL}
	ec.ListenPeerUrls = []url.URL{peerURL}
	ec.AdvertisePeerUrls = []url.URL{peerURL}
	ec.InitialCluster = fmt.Sprintf("%s=%s", cfg.Name, peerURL.String())
	ec.LogLevel = "error"
	ec.Logger = "zap"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	// Keep the database small: discoverd's history is only heartbeats.
	ec.AutoCompactionMode = "periodic"
	ec.AutoCompactionRetention = "5m"
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("embedded etcd not ready after 60s")
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	return &Embedded{etcd: e, tls: clientTLS}, nil
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

// Err returns a channel that receives a fatal etcd error.
func (e *Embedded) Err() <-chan error { return e.etcd.Err() }

// Close stops etcd.
func (e *Embedded) Close() { e.etcd.Close() }

// Dial connects an etcd client to endpoints; tlsConfig is nil for plain
// HTTP endpoints.
func Dial(ctx context.Context, endpoints []string, tlsConfig *tls.Config) (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Context:     ctx,
		Logger:      zap.NewNop(),
		TLS:         tlsConfig,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", endpoints, err)
	}
	return c, nil
}
