// Package controllerd is the flynn-controller binary: its flags and how
// they become the controller server's Config, with a host runner for
// one-off jobs when discoverd is given, and the blob collector
// (controller/blobgc) that runs beside the server. It sits apart from
// controller/server because the runner (controller/hostrunner) builds on
// the server's types.
package controllerd

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller/hostrunner"
	"github.com/openflynn/flynn/controller/server"
	"github.com/openflynn/flynn/discoverd"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	logclient "github.com/openflynn/flynn/logaggregator/client"
	"github.com/openflynn/flynn/pkg/cmdline"
	"github.com/openflynn/flynn/router/routermetrics"
)

// Daemon is the flynn-controller binary.
func Daemon() cmdline.Daemon[Config] {
	flags := []cli.Flag{
		cmdline.String("http-addr", ":8081", "listen address (default :$PORT in a job)"),
		cmdline.String("database-url", "", "Postgres URL of the controller's database; its host may name a discoverd service (leader.postgres.discoverd)", cmdline.Was("DATABASE_URL")),
		cmdline.String("discoverd-url", "", "discoverd, to reach Postgres by service name, find the hosts one-off jobs run on and job logs come from, and the routers whose metrics GET /apps/:id/metrics sums (default: http://EXTERNAL_IP:1111 in a job; none: those requests answer service_unavailable)", cmdline.Was("--discoverd", "DISCOVERD")),
		cmdline.String("external-ip", "", "this node's address, whose discoverd is the default", cmdline.Was("EXTERNAL_IP")),
		cmdline.Duration("event-retention", server.DefaultEventRetention, "how long the event log keeps events; older ones are deleted every hour, and a stream resumed across them is refused (0: keep every event)"),
		cmdline.String("default-route-domain", "", "domain under which every new app that is not a system app gets an HTTP route, <app>.<domain> to its web processes (bootstrap gives the cluster's domain; none: apps get a route only when one is added)"),
		cmdline.Insecure(),
	}
	flags = append(flags, cmdline.Secret("controller-key", "key of system requests (the platform's components), sent as the basic-auth password; people use API keys (required unless --insecure)", cmdline.Was("--auth-key", "AUTH_KEY", "FLYNN_AUTH_KEY"))...)
	flags = append(flags, blobGCFlags()...)
	flags = append(flags, imageFlags()...)
	flags = append(flags, cmdline.Secret("cluster-key", "key of the host and discoverd APIs (default: the controller key)", cmdline.Was("CLUSTER_KEY"))...)
	return cmdline.Daemon[Config]{
		Name:  "flynn-controller",
		Usage: "Flynn's controller: the REST API over Postgres",
		Description: `Serves apps, releases, formations, jobs, routes, keys, providers,
deployments, hosts and the event stream; applies its migrations at start.
The event log keeps no secrets (env values, private keys) and forgets
events older than --event-retention. With --default-route-domain, every
app that is not a system app gets the route <app>.<domain> as it is
created.`,
		Flags: flags,
		Config: func(c *cli.Context, logger *slog.Logger) (Config, error) {
			srv, err := serverConfig(c, logger)
			if err != nil {
				return Config{Server: srv}, err
			}
			gc, err := blobGCConfig(c, logger, srv.AuthKey)
			return Config{Server: srv, BlobGC: gc}, err
		},
		Run: Run,
	}
}

// serverConfig is the API server's part of the Config.
func serverConfig(c *cli.Context, logger *slog.Logger) (server.Config, error) {
	key, err := cmdline.RequiredKey(c, logger, "controller-key")
	if err != nil {
		return server.Config{}, err
	}
	clusterKey, err := cmdline.SecretOf(c, "cluster-key")
	if err != nil {
		return server.Config{}, err
	}
	if clusterKey == "" {
		clusterKey = key
	}
	blobKey, err := cmdline.SecretOf(c, "blobstore-key")
	if err != nil {
		return server.Config{}, err
	}
	if blobKey == "" {
		blobKey = key
	}
	cfg := server.Config{Addr: cmdline.ListenAddr(c, "http-addr"), DatabaseURL: c.String("database-url"), AuthKey: key,
		EventRetention: c.Duration("event-retention"), BlobstoreKey: blobKey, DefaultRouteDomain: c.String("default-route-domain")}
	if cfg.DatabaseURL == "" {
		return cfg, fmt.Errorf("a database URL is required: --database-url or $%s", cmdline.Env("database-url"))
	}
	if err := server.CheckDefaultRouteDomain(cfg.DefaultRouteDomain); err != nil {
		return cfg, fmt.Errorf("--default-route-domain: %w", err)
	}
	if cfg.EventRetention < 0 {
		return cfg, fmt.Errorf("--event-retention %v: must not be negative", cfg.EventRetention)
	}
	if err := setImages(c, logger, &cfg); err != nil {
		return cfg, err
	}
	if u := discoverdURL(c); u != "" {
		d := discoverdclient.New(u, clusterKey)
		runner := hostrunner.New(d, clusterKey, logger)
		cfg.Runner = runner
		cfg.Builder = runner
		cfg.DialDatabase = (&discoverdclient.Dialer{Client: d}).DialContext
		// Providers' URLs name discoverd services.
		cfg.ProviderClient = discoverdclient.HTTPClient(d)
		cfg.ProviderClient.Timeout = providerTimeout
		// The log aggregator is found the same way; a follow lasts as
		// long as its reader, so this client has no overall timeout.
		cfg.Logs = logclient.New(logclient.DiscoverdURL, clusterKey, discoverdclient.HTTPClient(d))
		// The routers' metrics, at their node addresses as discoverd
		// lists them, behind the cluster key.
		scraper := routermetrics.New(d, clusterKey, nil)
		scraper.Logger = logger.With("component", "routermetrics")
		cfg.RouterMetrics = scraper
	}
	return cfg, nil
}

// providerTimeout bounds a call to a resource provider, which creates a
// database, say.
const providerTimeout = 30 * time.Second

// discoverdURL is --discoverd-url or, when it is not given and the
// controller runs as a job (flynn-host sets $FLYNN_EXTERNAL_IP), the
// discoverd of its own node; "" when neither is known.
func discoverdURL(c *cli.Context) string {
	if u := c.String("discoverd-url"); u != "" {
		return u
	}
	if ip := c.String("external-ip"); ip != "" {
		return discoverd.NodeURL(ip)
	}
	return ""
}
