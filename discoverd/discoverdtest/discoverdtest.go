// Package discoverdtest runs a real discoverd in-process for tests: an
// embedded etcd member in a temporary directory on free loopback ports
// and the HTTP API (and optionally DNS) on loopback. Several of them, on
// 127.0.0.1, 127.0.0.2, … with Join, form one etcd cluster as the nodes of
// a cluster do.
package discoverdtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/discoverd/server"
	"github.com/openflynn/flynn/discoverd/store"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// Server is a running discoverd.
type Server struct {
	// URL is the HTTP API's base URL.
	URL string
	// DNSAddr is the DNS address ("127.0.0.1:port"), when DNS was asked for.
	DNSAddr string
	// Key is the cluster key writes need ("" for none).
	Key string
	// DataDir holds the discoverd's data (start another on it to restart).
	DataDir string

	etcdEndpoints []string
	cancel        context.CancelFunc
	done          chan error
}

// EtcdEndpoints returns the etcd the server uses (its own member's, or
// the operator's it was given), for tests that compare against it or look
// at its keys. A discoverd that is a client of other members has none.
func (s *Server) EtcdEndpoints() []string { return s.etcdEndpoints }

// Options tune a test server.
type Options struct {
	Key string
	DNS bool
	// EtcdEndpoints uses an external etcd instead of an embedded one.
	EtcdEndpoints []string
	// KeyPrefix namespaces the keys in a shared etcd.
	KeyPrefix string
	// DataDir reuses an embedded etcd's data (for restart tests); default a
	// new temporary directory.
	DataDir string
	// HTTPAddr fixes the listen address (for restart tests); default a free
	// loopback port.
	HTTPAddr string
	// EtcdClientAddr and EtcdPeerAddr fix the embedded etcd's ports.
	EtcdClientAddr, EtcdPeerAddr string
	// IP is the node address every listener binds (its port free);
	// default 127.0.0.1.
	IP string
	// Name is the etcd member name; default "discoverd".
	Name string
	// Join lists the discoverd URLs whose etcd cluster to join.
	Join []string
	// EndpointSyncInterval is how often a client discoverd follows the
	// member list; default server.Config's.
	EndpointSyncInterval time.Duration

	// freeAddr picks a free port on ip; default FreeAddrOn. Tests of the
	// retry hand out a taken one.
	freeAddr func(ip string) (string, error)
}

// New starts a discoverd for t and stops it when t ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	testdeps.Short(t)
	if opts.DataDir == "" && len(opts.EtcdEndpoints) == 0 {
		opts.DataDir = t.TempDir()
	}
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Start starts a discoverd; Stop ends it. The etcd ports it picks itself
// were free a moment before etcd binds them, and another process may take
// one in between (a CI run's parallel tests do): then it picks others and
// starts again, from the same empty data dir.
func Start(opts Options) (*Server, error) {
	if opts.DataDir == "" && len(opts.EtcdEndpoints) == 0 {
		return nil, fmt.Errorf("discoverdtest: a data dir or etcd endpoints are required")
	}
	picked := len(opts.EtcdEndpoints) == 0 && opts.EtcdClientAddr == "" && opts.EtcdPeerAddr == ""
	fresh := false
	if opts.DataDir != "" {
		entries, err := os.ReadDir(opts.DataDir)
		fresh = err == nil && len(entries) == 0
	}
	for attempt := 1; ; attempt++ {
		s, err := start(opts)
		if err == nil || !picked || !fresh || attempt == 3 || !errors.Is(err, syscall.EADDRINUSE) {
			return s, err
		}
		if err := emptyDir(opts.DataDir); err != nil {
			return nil, err
		}
	}
}

// emptyDir removes what dir holds.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func start(opts Options) (*Server, error) {
	if opts.freeAddr == nil {
		opts.freeAddr = FreeAddrOn
	}
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = net.JoinHostPort(opts.IP, "0")
	}
	if len(opts.EtcdEndpoints) == 0 {
		var err error
		if opts.EtcdClientAddr == "" {
			if opts.EtcdClientAddr, err = opts.freeAddr(opts.IP); err != nil {
				return nil, err
			}
		}
		if opts.EtcdPeerAddr == "" {
			if opts.EtcdPeerAddr, err = opts.freeAddr(opts.IP); err != nil {
				return nil, err
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Key: opts.Key, DataDir: opts.DataDir, cancel: cancel, done: make(chan error, 1), etcdEndpoints: opts.EtcdEndpoints}
	if len(opts.EtcdEndpoints) == 0 {
		s.etcdEndpoints = []string{store.EtcdURL(opts.EtcdClientAddr, opts.Key)}
	}
	ready := make(chan struct{})
	cfg := server.Config{
		HTTPAddr:       opts.HTTPAddr,
		EtcdEndpoints:  opts.EtcdEndpoints,
		DataDir:        opts.DataDir,
		EtcdClientAddr: opts.EtcdClientAddr,
		EtcdPeerAddr:   opts.EtcdPeerAddr,
		Name:           opts.Name,
		Join:           opts.Join,
		KeyPrefix:      opts.KeyPrefix,
		AuthKey:        opts.Key,

		EndpointSyncInterval: opts.EndpointSyncInterval,
		Ready: func(httpAddr, dnsAddr string) {
			s.URL = "http://" + httpAddr
			s.DNSAddr = dnsAddr
			close(ready)
		},
	}
	if opts.DNS {
		cfg.DNSAddr = net.JoinHostPort(opts.IP, "0")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { s.done <- server.Run(ctx, cfg, logger) }()
	select {
	case <-ready:
		return s, nil
	case err := <-s.done:
		cancel()
		return nil, fmt.Errorf("discoverdtest: discoverd exited: %w", err)
	case <-time.After(90 * time.Second):
		cancel()
		<-s.done
		return nil, fmt.Errorf("discoverdtest: discoverd not ready after 90s")
	}
}

// Client returns a client of s with its key.
func (s *Server) Client() *client.Client { return client.New(s.URL, s.Key) }

// Stop ends discoverd and waits for it.
func (s *Server) Stop() {
	s.cancel()
	<-s.done
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr() (string, error) { return FreeAddrOn("127.0.0.1") }

// FreeAddrOn returns ip with a port that was free a moment ago.
func FreeAddrOn(ip string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
