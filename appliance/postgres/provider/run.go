// Package provider is flynn-postgres-api, the resource provider that gives apps
// databases of their own on the Postgres appliance (`flynn resource add
// postgres`).
//
// The controller POSTs a provision request to it (controller/provider.go);
// it creates, through a superuser's connection to the appliance's primary,
// a role with a random password and a database the role owns, which no
// other role may connect to, and answers the database's name as the
// resource id with the env that reaches it: DATABASE_URL and the PG*
// variables, at postgres.<cluster domain>:3432, the router's TCP route to
// the primary, which flynn-host maps to the app network's gateway in app
// jobs. DELETE drops the database and its role. Every request but GET
// /health carries the provider key as its basic-auth password, which the
// controller sends from the provider's URL
// (http://:KEY@postgres-api.discoverd/databases).
//
//	controller ──POST /databases──► postgres-api ──CREATE ROLE/DATABASE──► leader.postgres.discoverd
//	    │                                 │
//	    └─ release env ◄── {"id","env"} ──┘        app job ──► postgres.DOMAIN:3432 (router) ──► primary
package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openflynn/flynn/appliance/postgres/backup"
)

// Config configures Run.
type Config struct {
	// HTTPAddr is the listen address; default ":8080" (":$PORT" in a job,
	// through the command line).
	HTTPAddr string
	// DatabaseURL is a superuser's URL of the appliance, e.g.
	// postgres://postgres:PW@leader.postgres.discoverd/postgres (required).
	DatabaseURL string
	// DialDatabase, when set, opens every database connection, given the
	// URL's host unresolved, so that it may name a discoverd service
	// (discoverd/client.Dialer). Nil connects to the host as it is.
	DialDatabase func(ctx context.Context, network, addr string) (net.Conn, error)
	// Key is the provider key requests carry; empty admits everyone
	// (--insecure only).
	Key string
	// Domain is the cluster's domain: apps reach their databases at
	// postgres.<Domain> (required).
	Domain string
	// RoutePort is the router port of the TCP route to the primary;
	// default DefaultRoutePort.
	RoutePort int
	// Resolve, when set, turns the database URL's host:port into an
	// address for pg_dump and pg_restore, which look names up only in DNS
	// (backup.Config.Resolve).
	Resolve func(ctx context.Context, hostport string) (string, error)
	// BackupDir holds backups and restores while they stream; default
	// the system's temporary directory.
	BackupDir string
}

// Server timeouts. A provision request is small and its work bounded by
// Options.StoreTimeout; the write timeout leaves room for that.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = DefaultStoreTimeout + 15*time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	shutdownTimeout   = 7 * time.Second
)

// Run serves the API until ctx ends, then shuts down gracefully. It does
// not wait for Postgres: until the primary answers, requests get 503.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if cfg.DatabaseURL == "" {
		return errors.New("postgres-api: a database URL is required")
	}
	if cfg.Domain == "" {
		return errors.New("postgres-api: the cluster domain is required")
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = ":8080"
	}
	pool, err := openPool(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	backups := backup.Handler(backup.Config{URL: cfg.DatabaseURL, Resolve: cfg.Resolve, TempDir: cfg.BackupDir, Logger: logger})
	srv, err := New(NewDatabases(pool), Options{Key: cfg.Key, Host: "postgres." + cfg.Domain, Port: cfg.RoutePort, Logger: logger, Backup: backups})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("postgres-api: listen: %w", err)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("postgres-api listening", "addr", l.Addr().String(), "apps_reach", srv.opts.Host)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("postgres-api: serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		hs.Close()
	}
	<-errc
	return nil
}

// openPool makes the superuser's pool; it connects lazily, so a primary
// that is down (a failover) only fails requests until it is back.
func openPool(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		// pgx hides the password from its message only as best it can.
		return nil, errors.New("postgres-api: the database URL does not parse as a Postgres URL")
	}
	if cfg.DialDatabase != nil {
		pc.ConnConfig.DialFunc = cfg.DialDatabase
		pc.ConnConfig.LookupFunc = unresolved
	}
	// Provisioning is rare: a few connections serve it, and each is
	// dropped soon so that connections follow a failover.
	pc.MaxConns = 4
	pc.MaxConnLifetime = 5 * time.Minute
	pc.HealthCheckPeriod = 15 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres-api: %w", err)
	}
	return pool, nil
}

// unresolved hands a host name on to the dialer as it is, where pgx would
// look it up in DNS first.
func unresolved(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
