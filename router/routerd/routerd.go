// Package routerd is the flynn-router binary: its flags, and how they
// become the router's Config and its sources of routes and backends (the
// controller's API and discoverd, or a static file).
package routerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	cclient "github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/discoverd"
	dclient "github.com/openflynn/flynn/discoverd/client"
	logclient "github.com/openflynn/flynn/logaggregator/client"
	"github.com/openflynn/flynn/logaggregator/shipper"
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
	// Shipper, when set, is Server.RequestLog's: Run runs it, so the
	// request lines reach the log aggregator, until the router is done.
	Shipper *shipper.Shipper
}

// Run serves until ctx ends, then drains.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	r, err := server.New(cfg.Server, cfg.Routes, cfg.Backends, logger)
	if err != nil {
		return err
	}
	if cfg.Shipper != nil {
		// The shipper outlives the router's drain, so it sends the
		// lines of the requests answered then.
		shipCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
		shipped := make(chan struct{})
		go func() {
			defer close(shipped)
			cfg.Shipper.Run(shipCtx)
		}()
		defer func() {
			stop()
			<-shipped
		}()
	}
	return r.Run(ctx)
}

// Daemon is the flynn-router binary.
func Daemon() cmdline.Daemon[Config] {
	was := func(old string) cmdline.Option { return cmdline.Was(old) }
	flags := []cli.Flag{
		cmdline.String("http-addr", "", "HTTP listen address (default: port 80 on --external-ip and --app-gateway, or :80 without them; empty: none)", was("ROUTER_HTTP_ADDR")),
		cmdline.String("https-addr", "", "HTTPS listen address (default: port 443 on --external-ip and --app-gateway, or :443 without them; empty: none)", was("ROUTER_HTTPS_ADDR")),
		cmdline.String("tcp-host", "", "host TCP routes listen on (default: --external-ip and --app-gateway, or every interface without them; empty: every interface)", was("ROUTER_TCP_HOST")),
		cmdline.String("external-ip", "", "this node's address, which the router serves on (flynn-host sets it)", was("EXTERNAL_IP")),
		cmdline.String("app-gateway", "", "this node's app-network gateway, which the router serves on too, for the node's app jobs (flynn-host sets it)"),
		cmdline.String("job-id", "", "this router's job id, which its request lines in apps' logs name (flynn-host sets it)"),
		cmdline.String("host-id", "", "this node's host id, which its request lines in apps' logs name (flynn-host sets it)"),
		cmdline.String("metrics-addr", "127.0.0.1:9100", "metrics (/metrics, behind the cluster key) and health (/health, open) listen address (default in a job: --external-ip:$PORT_0, its first port)", was("ROUTER_METRICS_ADDR")),
		cmdline.String("tls-cert", "", "PEM file of the default TLS certificate (empty: a self-signed one)", was("ROUTER_TLS_CERT")),
		cmdline.String("tls-key", "", "PEM file of the default TLS key", was("ROUTER_TLS_KEY")),
		cmdline.String("controller-url", "", "controller API to follow routes from; http://controller.discoverd reaches any live controller", was("CONTROLLER_URL")),
		cmdline.String("discoverd-url", "", "discoverd to follow backends from and reach the controller through (default: http://EXTERNAL_IP:1111, this node's)", was("DISCOVERD_URL")),
		cmdline.String("static-config", "", "JSON file of routes and backends, instead of the controller and discoverd", was("ROUTER_STATIC_CONFIG")),
		cmdline.String("http-engine", server.EngineFastHTTP, "what serves HTTP/1.1: "+server.EngineFastHTTP+" (half the CPU per request) or "+server.EngineNetHTTP+"; HTTP/2 is net/http's either way"),
		cmdline.Duration("dial-timeout", 5*time.Second, "backend connect timeout", was("ROUTER_DIAL_TIMEOUT")),
		cmdline.Duration("response-header-timeout", 60*time.Second, "wait for a backend's response headers", was("ROUTER_RESPONSE_HEADER_TIMEOUT")),
		cmdline.Duration("read-header-timeout", 10*time.Second, "wait for a client's request headers", was("ROUTER_READ_HEADER_TIMEOUT")),
		cmdline.Duration("idle-timeout", 120*time.Second, "client keep-alive idle timeout", was("ROUTER_IDLE_TIMEOUT")),
		cmdline.Duration("body-read-timeout", 60*time.Second, "longest wait for more of a request body; a client that stalls in its body longer is cut, an upload that keeps sending is not"),
		cmdline.Duration("tcp-idle-timeout", 10*time.Minute, "close TCP route and websocket connections that carried no bytes either way for this long"),
		cmdline.Duration("shutdown-timeout", 30*time.Second, "drain time on SIGTERM", was("ROUTER_SHUTDOWN_TIMEOUT")),
		cmdline.Int("max-conns", 20000, "open client connections per HTTP listener"),
		cmdline.Int("max-idle-conns-per-backend", 256, "idle keep-alive connections kept per backend"),
		cmdline.Int("max-tcp-conns", 20000, "open connections over all TCP routes"),
		cmdline.Int("max-tcp-conns-per-route", 5000, "open connections of each TCP route, so that one cannot take every slot of --max-tcp-conns"),
		cmdline.Insecure(),
	}
	flags = append(flags, cmdline.Secret("controller-key", "controller key (required with --controller-url unless --insecure)", was("CONTROLLER_KEY"))...)
	flags = append(flags, cmdline.Secret("cluster-key", "cluster key, for discoverd and required for /metrics (none: /metrics is open)", cmdline.Was("--discoverd-key", "DISCOVERD_KEY"))...)
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
	hosts := nodeHosts(c)
	cfg := Config{Server: server.Config{
		HTTPAddrs:              listenAddrs(c, "http-addr", hosts, "80"),
		HTTPSAddrs:             listenAddrs(c, "https-addr", hosts, "443"),
		TCPHosts:               hosts,
		ReusePort:              true,
		MetricsAddr:            cmdline.JobPortAddr(c, "metrics-addr", 0),
		HTTPEngine:             c.String("http-engine"),
		JobID:                  c.String("job-id"),
		HostID:                 c.String("host-id"),
		DialTimeout:            c.Duration("dial-timeout"),
		ResponseHeaderTimeout:  c.Duration("response-header-timeout"),
		ReadHeaderTimeout:      c.Duration("read-header-timeout"),
		IdleTimeout:            c.Duration("idle-timeout"),
		BodyReadTimeout:        c.Duration("body-read-timeout"),
		TCPIdleTimeout:         c.Duration("tcp-idle-timeout"),
		ShutdownTimeout:        c.Duration("shutdown-timeout"),
		MaxConns:               c.Int("max-conns"),
		MaxIdleConnsPerBackend: c.Int("max-idle-conns-per-backend"),
		MaxTCPConns:            c.Int("max-tcp-conns"),
		MaxTCPConnsPerRoute:    c.Int("max-tcp-conns-per-route"),
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
	if c.IsSet("tcp-host") {
		cfg.Server.TCPHosts = []string{c.String("tcp-host")}
	}
	sticky, err := cmdline.SecretOf(c, "sticky-key")
	if err != nil {
		return cfg, err
	}
	cfg.Server.StickyKey = []byte(sticky)
	// The cluster key reaches discoverd and guards /metrics.
	clusterKey, err := cmdline.SecretOf(c, "cluster-key")
	if err != nil {
		return cfg, err
	}
	cfg.Server.MetricsKey = clusterKey
	switch {
	case c.String("static-config") != "":
		src, err := staticconfig.Load(c.String("static-config"))
		if err != nil {
			return cfg, err
		}
		cfg.Routes, cfg.Backends = src, src
	case c.String("controller-url") != "":
		// A router without the key follows only a controller that admits
		// everyone.
		controllerKey, err := cmdline.RequiredKey(c, logger, "controller-key")
		if err != nil {
			return cfg, err
		}
		d := dclient.New(discoverdURL(c), clusterKey)
		ctrl := cclient.NewWithHTTPClient(c.String("controller-url"), controllerKey, dclient.HTTPClient(d))
		cfg.Routes = controllerroutes.New(ctrl, logger)
		cfg.Backends = discoverdbackends.New(d)
		// Each request's line goes to its app's log, through the log
		// aggregator.
		cfg.Shipper = shipper.New(logclient.New(logclient.DiscoverdURL, clusterKey, dclient.HTTPClient(d)), shipper.Options{}, logger.With("part", "log-shipper"))
		cfg.Server.RequestLog = cfg.Shipper
		cfg.Server.MoreMetrics = append(cfg.Server.MoreMetrics, cfg.Shipper.Collector("flynn_router"))
	default:
		return cfg, errors.New("either --controller-url or --static-config is required")
	}
	return cfg, nil
}

// nodeHosts are the addresses a router serves on by default: its node's
// address and its node's app-network gateway, each when known. A router
// bound to these rather than to every interface leaves the node's other
// addresses alone, so several nodes fit on one machine (127.0.0.N).
func nodeHosts(c *cli.Context) []string {
	var hosts []string
	for _, name := range []string{"external-ip", "app-gateway"} {
		if h := c.String(name); h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// listenAddrs is the listen address flag name when given (empty: none),
// else port on each of hosts, else port on every interface.
func listenAddrs(c *cli.Context, name string, hosts []string, port string) []string {
	if c.IsSet(name) {
		if a := c.String(name); a != "" {
			return []string{a}
		}
		return nil
	}
	if len(hosts) == 0 {
		return []string{":" + port}
	}
	addrs := make([]string, len(hosts))
	for i, h := range hosts {
		addrs[i] = net.JoinHostPort(h, port)
	}
	return addrs
}

// discoverdURL is --discoverd-url or, when it is not given, the discoverd
// of the router's node (of 127.0.0.1 without --external-ip).
func discoverdURL(c *cli.Context) string {
	if u := c.String("discoverd-url"); u != "" {
		return u
	}
	ip := c.String("external-ip")
	if ip == "" {
		ip = "127.0.0.1"
	}
	return discoverd.NodeURL(ip)
}
