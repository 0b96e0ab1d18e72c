package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/discoverd"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/pkg/cmdline"
)

// KeyName is the provider key's secret: --postgres-api-key-file, or its
// value in $FLYNN_POSTGRES_API_KEY.
const KeyName = "postgres-api-key"

// Daemon is the flynn-postgres-api binary: its flags and how they become a
// Config.
func Daemon() cmdline.Daemon[Config] {
	flags := []cli.Flag{
		cmdline.String("http-addr", ":8080", "listen address (default :$PORT in a job)"),
		cmdline.String("database-url", "", "a superuser's URL of the Postgres appliance; its host may name a discoverd service (postgres://postgres:PW@leader.postgres.discoverd/postgres)"),
		cmdline.String("discoverd-url", "", "discoverd, to reach Postgres by service name (default: http://EXTERNAL_IP:1111 in a job; a comma list uses its first)"),
		cmdline.String("external-ip", "", "this node's address, whose discoverd is the default", cmdline.Was("EXTERNAL_IP")),
		cmdline.String("domain", "", "the cluster's domain: apps reach their databases at postgres.DOMAIN"),
		cmdline.Int("route-port", DefaultRoutePort, "router port of the TCP route to the Postgres primary, which apps connect to"),
		cmdline.String("backup-dir", "", "where backups and restores are held while they stream (default the system's temporary directory)"),
		cmdline.Insecure(),
	}
	flags = append(flags, cmdline.Secret(KeyName, "provider key every request carries as its basic-auth password (required unless --insecure)")...)
	return cmdline.Daemon[Config]{
		Name:  "flynn-postgres-api",
		Usage: "the provider of apps' Postgres databases (flynn resource add postgres)",
		Description: `POST /databases creates a role with a random password and a database it
owns, which no other role may connect to, and answers its name and the env
that reaches it (DATABASE_URL, PGHOST…, at postgres.DOMAIN:ROUTE-PORT);
DELETE /databases/NAME drops both. Requests carry the provider key as the
basic-auth password; GET /health does not need it.`,
		Flags: flags,
		Config: func(c *cli.Context, logger *slog.Logger) (Config, error) {
			key, err := cmdline.RequiredKey(c, logger, KeyName)
			if err != nil {
				return Config{}, err
			}
			cfg := Config{
				HTTPAddr:    cmdline.ListenAddr(c, "http-addr"),
				DatabaseURL: c.String("database-url"),
				Key:         key,
				Domain:      strings.TrimSuffix(c.String("domain"), "."),
				RoutePort:   c.Int("route-port"),
				BackupDir:   c.String("backup-dir"),
			}
			if cfg.DatabaseURL == "" {
				return cfg, fmt.Errorf("a database URL is required: --database-url or $%s", cmdline.Env("database-url"))
			}
			if cfg.Domain == "" {
				return cfg, fmt.Errorf("the cluster domain is required: --domain or $%s", cmdline.Env("domain"))
			}
			if cfg.RoutePort <= 0 || cfg.RoutePort > 65535 {
				return cfg, errors.New("--route-port must be a port number")
			}
			if u := discoverdURL(c); u != "" {
				// Reads need no key: the dialer only looks instances up.
				dc := discoverdclient.New(u, "")
				cfg.DialDatabase = (&discoverdclient.Dialer{Client: dc}).DialContext
				cfg.Resolve = func(ctx context.Context, hostport string) (string, error) { return resolve(ctx, dc, hostport) }
			}
			return cfg, nil
		},
		Run: Run,
	}
}

// resolve turns a discoverd name (leader.postgres.discoverd:5432) into
// the address of one live instance, the leader when the name asks for it;
// another host:port is returned as it is.
func resolve(ctx context.Context, dc *discoverdclient.Client, hostport string) (string, error) {
	addrs, ok, err := dc.Resolve(ctx, hostport)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", hostport, err)
	}
	if !ok {
		return hostport, nil
	}
	return addrs[0], nil
}

// discoverdURL is the first of --discoverd-url or, when it is not given
// and the daemon runs as a job, the discoverd of its own node; "" when
// neither is known.
func discoverdURL(c *cli.Context) string {
	for _, u := range strings.Split(c.String("discoverd-url"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			return u
		}
	}
	if ip := c.String("external-ip"); ip != "" {
		return discoverd.NodeURL(ip)
	}
	return ""
}
