package server

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/pkg/cmdline"
)

// Daemon is the blobstore binary: its flags and how they become a Config.
func Daemon() cmdline.Daemon[Config] {
	return cmdline.Daemon[Config]{
		Name:  "blobstore",
		Usage: "Flynn's blob storage for slugs and build caches, over HTTP",
		Description: `Serves PUT, GET, HEAD and DELETE of blobs by path, on a filesystem or in
Postgres. Every request needs the blobstore key, or a URL signed with it
that allows one method on one path until it expires (uploads once only).
Given a discoverd URL it registers as the service "blobstore" (unless
--register=false: a job whose process names the service is registered by
flynn-host). As a Flynn job it listens on $PORT unless --http-addr is
given, and reaches a database URL's discoverd names through its node's
discoverd.`,
		Flags: append([]cli.Flag{
			cmdline.String("http-addr", DefaultHTTPAddr, "listen address (default :$PORT in a job)"),
			cmdline.String("backend", BackendFS, "storage backend: fs or postgres"),
			cmdline.String("dir", DefaultDir, "root directory of the fs backend"),
			cmdline.String("database-url", "", "database of the postgres backend; its host may name a discoverd service (leader.postgres.discoverd)", cmdline.Was("DATABASE_URL")),
			cmdline.Size("max-size", DefaultMaxSize, "largest blob accepted"),
			cmdline.Duration("idle-timeout", DefaultIdleTimeout, "how long one read of an upload or one write of a download may wait for the client before the connection is closed"),
			cmdline.String("discoverd-url", "", `discoverd to register in as "blobstore" (none: no registration) and to reach the database through (default: http://EXTERNAL_IP:1111)`, cmdline.Was("--discoverd", "DISCOVERD")),
			cmdline.Bool("register", true, `register in discoverd as "blobstore" when --discoverd-url is given`),
			cmdline.String("external-ip", "", "IP registered in discoverd (default: the listen IP, else 127.0.0.1)", cmdline.Was("--advertise-host", "EXTERNAL_IP")),
			cmdline.Insecure(),
		}, cmdline.Secret("blobstore-key", "cluster key: requests carry it, or a URL signed with it (blobstore/signed); required unless --insecure", cmdline.Was("--auth-key", "FLYNN_AUTH_KEY", "AUTH_KEY"))...),
		Config: func(c *cli.Context, logger *slog.Logger) (Config, error) {
			key, err := cmdline.RequiredKey(c, logger, "blobstore-key")
			if err != nil {
				return Config{}, err
			}
			cfg := Config{
				HTTPAddr:      cmdline.ListenAddr(c, "http-addr"),
				Backend:       c.String("backend"),
				Dir:           c.String("dir"),
				DatabaseURL:   c.String("database-url"),
				MaxSize:       cmdline.SizeOf(c, "max-size"),
				IdleTimeout:   c.Duration("idle-timeout"),
				AuthKey:       key,
				AdvertiseHost: c.String("external-ip"),
			}
			if cfg.MaxSize <= 0 {
				return cfg, errors.New("--max-size must be more than 0")
			}
			switch cfg.Backend {
			case BackendFS:
			case BackendPostgres:
				if cfg.DatabaseURL == "" {
					return cfg, fmt.Errorf("the postgres backend needs --database-url or $%s", cmdline.Env("database-url"))
				}
			default:
				return cfg, fmt.Errorf("--backend must be fs or postgres, not %q", cfg.Backend)
			}
			u := c.String("discoverd-url")
			if u != "" && c.Bool("register") {
				cfg.Registrar = DiscoverdRegistrar{Client: client.New(u, key)}
			}
			// Until flynn-host gives every job $FLYNN_DISCOVERD_URL, a job
			// asks its own node's discoverd.
			if ip := c.String("external-ip"); u == "" && ip != "" {
				u = discoverd.NodeURL(ip)
			}
			if u != "" && cfg.Backend == BackendPostgres {
				cfg.DialDatabase = (&client.Dialer{Client: client.New(u, key)}).DialContext
			}
			return cfg, nil
		},
		Run: Run,
	}
}
