// Command flynn-router is Flynn's HTTP(S) and TCP router. It follows the
// routes the controller stores (GET /routes, then the route event stream)
// and the backends discoverd tracks, or, with --static-config, a JSON file.
// Every flag can also be set through the environment variable named in its
// usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	cclient "github.com/openflynn/flynn/controller/client"
	dclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/router/controllerroutes"
	"github.com/openflynn/flynn/router/discoverdbackends"
	"github.com/openflynn/flynn/router/server"
	"github.com/openflynn/flynn/router/staticconfig"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(os.Args[1:], logger); err != nil {
		logger.Error("flynn-router", "err", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func run(args []string, logger *slog.Logger) error {
	fs := flag.NewFlagSet("flynn-router", flag.ContinueOnError)
	var cfg server.Config
	fs.StringVar(&cfg.HTTPAddr, "http-addr", env("ROUTER_HTTP_ADDR", ":80"), "HTTP listen address, empty to disable ($ROUTER_HTTP_ADDR)")
	fs.StringVar(&cfg.HTTPSAddr, "https-addr", env("ROUTER_HTTPS_ADDR", ":443"), "HTTPS listen address, empty to disable ($ROUTER_HTTPS_ADDR)")
	fs.StringVar(&cfg.TCPHost, "tcp-host", env("ROUTER_TCP_HOST", ""), "host TCP routes listen on, empty for all ($ROUTER_TCP_HOST)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", env("ROUTER_METRICS_ADDR", "127.0.0.1:9100"), "internal Prometheus metrics address ($ROUTER_METRICS_ADDR)")
	certFile := fs.String("tls-cert", env("ROUTER_TLS_CERT", ""), "PEM file of the default TLS certificate; self-signed when empty ($ROUTER_TLS_CERT)")
	keyFile := fs.String("tls-key", env("ROUTER_TLS_KEY", ""), "PEM file of the default TLS key ($ROUTER_TLS_KEY)")
	stickyKey := fs.String("sticky-key", env("ROUTER_STICKY_KEY", ""), "key signing sticky-session cookies, shared by a cluster's routers ($ROUTER_STICKY_KEY)")
	controllerURL := fs.String("controller-url", env("CONTROLLER_URL", ""), "controller API to follow routes from ($CONTROLLER_URL)")
	controllerKey := fs.String("controller-key", env("CONTROLLER_KEY", ""), "controller key ($CONTROLLER_KEY)")
	discoverdURL := fs.String("discoverd-url", env("DISCOVERD_URL", "http://127.0.0.1:1111"), "discoverd API to follow backends from ($DISCOVERD_URL)")
	discoverdKey := fs.String("discoverd-key", env("DISCOVERD_KEY", ""), "cluster key for discoverd ($DISCOVERD_KEY)")
	staticFile := fs.String("static-config", env("ROUTER_STATIC_CONFIG", ""), "JSON file of routes and backends, instead of the controller and discoverd ($ROUTER_STATIC_CONFIG)")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", envDuration("ROUTER_DIAL_TIMEOUT", 5*time.Second), "backend connect timeout ($ROUTER_DIAL_TIMEOUT)")
	fs.DurationVar(&cfg.ResponseHeaderTimeout, "response-header-timeout", envDuration("ROUTER_RESPONSE_HEADER_TIMEOUT", 60*time.Second), "wait for a backend's response headers ($ROUTER_RESPONSE_HEADER_TIMEOUT)")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", envDuration("ROUTER_READ_HEADER_TIMEOUT", 10*time.Second), "wait for a client's request headers ($ROUTER_READ_HEADER_TIMEOUT)")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", envDuration("ROUTER_IDLE_TIMEOUT", 120*time.Second), "client keep-alive idle timeout ($ROUTER_IDLE_TIMEOUT)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", envDuration("ROUTER_SHUTDOWN_TIMEOUT", 30*time.Second), "drain time on SIGTERM ($ROUTER_SHUTDOWN_TIMEOUT)")
	fs.IntVar(&cfg.MaxConns, "max-conns", 20000, "open client connections per HTTP listener")
	fs.IntVar(&cfg.MaxIdleConnsPerBackend, "max-idle-conns-per-backend", 256, "idle keep-alive connections kept per backend")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *certFile != "" || *keyFile != "" {
		var err error
		if cfg.TLSCert, err = os.ReadFile(*certFile); err != nil {
			return fmt.Errorf("read --tls-cert: %w", err)
		}
		if cfg.TLSKey, err = os.ReadFile(*keyFile); err != nil {
			return fmt.Errorf("read --tls-key: %w", err)
		}
	}
	cfg.StickyKey = []byte(*stickyKey)

	var routes server.RouteSource
	var backends server.BackendSource
	switch {
	case *staticFile != "":
		src, err := staticconfig.Load(*staticFile)
		if err != nil {
			return err
		}
		routes, backends = src, src
	case *controllerURL != "":
		routes = controllerroutes.New(cclient.New(*controllerURL, *controllerKey), logger)
		backends = discoverdbackends.New(dclient.New(*discoverdURL, *discoverdKey))
	default:
		return errors.New("either --controller-url or --static-config is required")
	}

	r, err := server.New(cfg, routes, backends, logger)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return r.Run(ctx)
}
