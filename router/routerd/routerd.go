// Package routerd is the flynn-router binary: its flags, and how they
// become the router's Config and its sources of routes and backends (the
// controller's API and discoverd, or a static file).
package routerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	cclient "github.com/openflynn/flynn/controller/client"
	dclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/pkg/cmdline"
	"github.com/openflynn/flynn/router/controllerroutes"
	"github.com/openflynn/flynn/router/discoverdbackends"
	"github.com/openflynn/flynn/router/server"
	"github.com/openflynn/flynn/router/staticconfig"
)

// Config is a router and where its routes and backends come from.
type Config struct {
	Server   server.Config
	Routes   server.RouteSource
	Backends server.BackendSource
}

// Run serves until ctx ends, then drains.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	r, err := server.New(cfg.Server, cfg.Routes, cfg.Backends, logger)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// Daemon is the flynn-router binary.
func Daemon() cmdline.Daemon[Config] {
	was := func(old string) cmdline.Option { return cmdline.Was(old) }
	flags := []cli.Flag{
		cmdline.String("http-addr", ":80", "HTTP listen address (empty: none)", was("ROUTER_HTTP_ADDR")),
		cmdline.String("https-addr", ":443", "HTTPS listen address (empty: none)", was("ROUTER_HTTPS_ADDR")),
		cmdline.String("tcp-host", "", "host TCP routes listen on (empty: every interface)", was("ROUTER_TCP_HOST")),
		cmdline.String("metrics-addr", "127.0.0.1:9100", "Prometheus metrics listen address; keep it internal", was("ROUTER_METRICS_ADDR")),
		cmdline.String("tls-cert", "", "PEM file of the default TLS certificate (empty: a self-signed one)", was("ROUTER_TLS_CERT")),
		cmdline.String("tls-key", "", "PEM file of the default TLS key", was("ROUTER_TLS_KEY")),
		cmdline.String("controller-url", "", "controller API to follow routes from", was("CONTROLLER_URL")),
		cmdline.String("discoverd-url", "http://127.0.0.1:1111", "discoverd to follow backends from", was("DISCOVERD_URL")),
		cmdline.String("static-config", "", "JSON file of routes and backends, instead of the controller and discoverd", was("ROUTER_STATIC_CONFIG")),
		cmdline.Duration("dial-timeout", 5*time.Second, "backend connect timeout", was("ROUTER_DIAL_TIMEOUT")),
		cmdline.Duration("response-header-timeout", 60*time.Second, "wait for a backend's response headers", was("ROUTER_RESPONSE_HEADER_TIMEOUT")),
		cmdline.Duration("read-header-timeout", 10*time.Second, "wait for a client's request headers", was("ROUTER_READ_HEADER_TIMEOUT")),
		cmdline.Duration("idle-timeout", 120*time.Second, "client keep-alive idle timeout", was("ROUTER_IDLE_TIMEOUT")),
		cmdline.Duration("shutdown-timeout", 30*time.Second, "drain time on SIGTERM", was("ROUTER_SHUTDOWN_TIMEOUT")),
		cmdline.Int("max-conns", 20000, "open client connections per HTTP listener"),
		cmdline.Int("max-idle-conns-per-backend", 256, "idle keep-alive connections kept per backend"),
	}
	flags = append(flags, cmdline.Secret("controller-key", "controller key", was("CONTROLLER_KEY"))...)
	flags = append(flags, cmdline.Secret("cluster-key", "cluster key, for discoverd", cmdline.Was("--discoverd-key", "DISCOVERD_KEY"))...)
	flags = append(flags, cmdline.Secret("sticky-key", "key signing sticky-session cookies, shared by a cluster's routers (default: random at start)", was("ROUTER_STICKY_KEY"))...)
	return cmdline.Daemon[Config]{
		Name:  "flynn-router",
		Usage: "Flynn's HTTP(S) and TCP router",
		Description: `Follows the routes the controller stores (its route events) and the
backends discoverd tracks, or, with --static-config, a JSON file.`,
		Flags:  flags,
		Config: configFrom,
		Run:    Run,
	}
}

func configFrom(c *cli.Context, logger *slog.Logger) (Config, error) {
	cfg := Config{Server: server.Config{
		HTTPAddr:               c.String("http-addr"),
		HTTPSAddr:              c.String("https-addr"),
		TCPHost:                c.String("tcp-host"),
		MetricsAddr:            c.String("metrics-addr"),
		DialTimeout:            c.Duration("dial-timeout"),
		ResponseHeaderTimeout:  c.Duration("response-header-timeout"),
		ReadHeaderTimeout:      c.Duration("read-header-timeout"),
		IdleTimeout:            c.Duration("idle-timeout"),
		ShutdownTimeout:        c.Duration("shutdown-timeout"),
		MaxConns:               c.Int("max-conns"),
		MaxIdleConnsPerBackend: c.Int("max-idle-conns-per-backend"),
	}}
	if cert, key := c.String("tls-cert"), c.String("tls-key"); cert != "" || key != "" {
		var err error
		if cfg.Server.TLSCert, err = os.ReadFile(cert); err != nil {
			return cfg, fmt.Errorf("--tls-cert: %w", err)
		}
		if cfg.Server.TLSKey, err = os.ReadFile(key); err != nil {
			return cfg, fmt.Errorf("--tls-key: %w", err)
		}
	}
	sticky, err := cmdline.SecretOf(c, "sticky-key")
	if err != nil {
		return cfg, err
	}
	cfg.Server.StickyKey = []byte(sticky)
	switch {
	case c.String("static-config") != "":
		src, err := staticconfig.Load(c.String("static-config"))
		if err != nil {
			return cfg, err
		}
		cfg.Routes, cfg.Backends = src, src
	case c.String("controller-url") != "":
		controllerKey, err := cmdline.SecretOf(c, "controller-key")
		if err != nil {
			return cfg, err
		}
		clusterKey, err := cmdline.SecretOf(c, "cluster-key")
		if err != nil {
			return cfg, err
		}
		cfg.Routes = controllerroutes.New(cclient.New(c.String("controller-url"), controllerKey), logger)
		cfg.Backends = discoverdbackends.New(dclient.New(c.String("discoverd-url"), clusterKey))
	default:
		return cfg, errors.New("either --controller-url or --static-config is required")
	}
	return cfg, nil
}
