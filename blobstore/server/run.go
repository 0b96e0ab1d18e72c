package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/blobstore/fs"
	"github.com/openflynn/flynn/blobstore/pg"
	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/pkg/retry"
)

// ServiceName is the discoverd service the blobstore registers as.
const ServiceName = "blobstore"

// DefaultHTTPAddr is where the blobstore listens unless told otherwise.
const DefaultHTTPAddr = ":5001"

// DefaultDir is the filesystem backend's root unless told otherwise.
const DefaultDir = "/var/lib/flynn/blobstore"

// Backend names accepted in Config.Backend.
const (
	BackendFS       = "fs"
	BackendPostgres = "postgres"
)

// Registrar announces the blobstore in service discovery.
// DiscoverdRegistrar adapts discoverd's client to it.
type Registrar interface {
	// Register registers inst under ServiceName and keeps it registered
	// until the returned Deregisterer is called or ctx ends.
	Register(ctx context.Context, inst *discoverd.Instance) (Deregisterer, error)
}

// Deregisterer withdraws a registration.
type Deregisterer interface {
	Deregister(ctx context.Context) error
}

// Config configures Run. The zero value serves a filesystem store in
// DefaultDir on DefaultHTTPAddr with no key and no registration.
type Config struct {
	// HTTPAddr is the listen address; DefaultHTTPAddr when empty.
	HTTPAddr string
	// Backend is BackendFS (the default when empty) or BackendPostgres.
	Backend string
	// Dir is the filesystem backend's root directory; DefaultDir when empty.
	Dir string
	// DatabaseURL is the Postgres backend's database; required with it.
	DatabaseURL string
	// DialDatabase, when set, opens the Postgres backend's connections,
	// given the URL's host unresolved, so that the URL may name a
	// discoverd service ("leader.postgres.discoverd"; see
	// pg.Options.DialFunc). Nil connects to the URL's host as it is.
	DialDatabase func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxSize is the largest blob accepted; DefaultMaxSize when zero.
	MaxSize int64
	// IdleTimeout bounds each read of an upload and each write of a
	// download (see Options.IdleTimeout); DefaultIdleTimeout when zero.
	IdleTimeout time.Duration
	// AuthKey is the cluster key every request needs, or a URL signed with
	// it; empty admits everyone.
	AuthKey string
	// Registrar, when set, registers the server in discoverd once it
	// listens, and deregisters it before shutting down.
	Registrar Registrar
	// AdvertiseHost is the host (IP) registered with the listener's port.
	// Empty means the listener's own IP, or 127.0.0.1 when listening on all
	// interfaces (right for a single-node cluster only).
	AdvertiseHost string
	// ShutdownTimeout bounds how long transfers in flight may finish once
	// ctx ends; 30 s when zero. Uploads cut off then leave nothing behind.
	ShutdownTimeout time.Duration
	// Ready, when set, is called with the listen address once the server
	// accepts requests (and is registered); tests use it.
	Ready func(addr string)
}

// Run serves the blobstore until ctx ends, then deregisters, lets requests
// in flight finish (up to ShutdownTimeout) and returns.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	backend, closeBackend, err := openBackend(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer closeBackend()

	addr := cfg.HTTPAddr
	if addr == "" {
		addr = DefaultHTTPAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if sw, ok := backend.(sweeper); ok {
		sweepCtx, stopSweeping := context.WithCancel(ctx)
		swept := make(chan struct{})
		go func() {
			defer close(swept)
			sweepLoop(sweepCtx, sw, sweepInterval, logger)
		}()
		defer func() {
			stopSweeping()
			<-swept
		}()
	}
	handler := NewHandler(backend, Options{MaxSize: cfg.MaxSize, AuthKey: cfg.AuthKey, IdleTimeout: cfg.IdleTimeout}, logger)
	srv := &http.Server{
		Handler: handler,
		// No read or write timeout: a multi-GB blob legitimately takes
		// minutes. The handler bounds each read and write instead
		// (Options.IdleTimeout); headers must come promptly.
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	listenAddr := ln.Addr().String()
	logger.Info("listening", "addr", listenAddr, "backend", backendName(cfg))

	stop := func() error {
		timeout := cfg.ShutdownTimeout
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		err := srv.Shutdown(sctx)
		if errors.Is(err, context.DeadlineExceeded) {
			logger.Warn("transfers still running at shutdown; closing them")
			err = srv.Close()
		}
		<-serveErr
		return err
	}

	var reg Deregisterer
	if cfg.Registrar != nil {
		inst := &discoverd.Instance{Addr: advertiseAddr(cfg.AdvertiseHost, ln.Addr()), Proto: "http"}
		if reg, err = cfg.Registrar.Register(ctx, inst); err != nil {
			_ = stop()
			return fmt.Errorf("register in discoverd: %w", err)
		}
		logger.Info("registered", "service", ServiceName, "addr", inst.Addr)
	}
	if cfg.Ready != nil {
		cfg.Ready(listenAddr)
	}

	var serveFailed error
	select {
	case <-ctx.Done():
	case serveFailed = <-serveErr:
		serveErr <- serveFailed // for stop, which waits on it
	}
	if reg != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := reg.Deregister(dctx); err != nil {
			logger.Warn("deregister failed", "err", err)
		}
		cancel()
	}
	err = stop()
	if serveFailed != nil {
		return fmt.Errorf("serve: %w", serveFailed)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// sweepInterval is how often Run has a backend that keeps replaced
// versions for a while (the Postgres one) delete those past their time.
const sweepInterval = 10 * time.Minute

// sweeper is a backend that deletes, when asked, what it kept of replaced
// or deleted blobs for the downloads still reading them (pg.Store.Sweep).
type sweeper interface {
	Sweep(ctx context.Context) (int, error)
}

// sweepLoop sweeps every interval until ctx ends. A failed sweep is only
// logged: what it left is swept next time.
func sweepLoop(ctx context.Context, sw sweeper, interval time.Duration, logger *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := sw.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("sweep of replaced blob versions failed", "err", err)
		case n > 0:
			logger.Info("swept replaced blob versions", "versions", n)
		}
	}
}

func backendName(cfg Config) string {
	if cfg.Backend == "" {
		return BackendFS
	}
	return cfg.Backend
}

// openBackend opens the configured store and returns it with its closer.
// Postgres is tried again until it answers (see pkg/retry): it may be
// starting, failing over or not yet in discoverd as the blobstore starts.
func openBackend(ctx context.Context, cfg Config, logger *slog.Logger) (blobstore.Backend, func(), error) {
	switch backendName(cfg) {
	case BackendFS:
		dir := cfg.Dir
		if dir == "" {
			dir = DefaultDir
		}
		s, err := fs.New(dir)
		if err != nil {
			return nil, nil, err
		}
		return s, func() {}, nil
	case BackendPostgres:
		if cfg.DatabaseURL == "" {
			return nil, nil, errors.New("the postgres backend needs a database URL")
		}
		s, err := pg.Open(ctx, cfg.DatabaseURL, pg.Options{DialFunc: cfg.DialDatabase})
		if err != nil {
			return nil, nil, err // a malformed URL: the pool connects lazily
		}
		if err := retry.Until(ctx, logger, "open the database", s.Migrate); err != nil {
			s.Close()
			return nil, nil, err
		}
		return s, s.Close, nil
	default:
		return nil, nil, fmt.Errorf("unknown backend %q (want %s or %s)", cfg.Backend, BackendFS, BackendPostgres)
	}
}

// advertiseAddr is the address registered in discoverd for a listener at
// addr.
func advertiseAddr(host string, addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	if host == "" {
		host = "127.0.0.1"
		if !tcp.IP.IsUnspecified() {
			host = tcp.IP.String()
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}
