package main

import (
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/host/ports"
	"github.com/openflynn/flynn/host/server"
)

func daemonCommand() *cli.Command {
	return &cli.Command{
		Name:  "daemon",
		Usage: "run the host daemon (job runner and host API)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "id", EnvVars: []string{"FLYNN_HOST_ID"}, Usage: "host id (default: the hostname)"},
			&cli.StringFlag{Name: "external-ip", Value: "127.0.0.1", EnvVars: []string{"EXTERNAL_IP"}, Usage: "address jobs are reached on"},
			&cli.StringFlag{Name: "listen", Value: ":1113", Usage: "host API listen address"},
			&cli.StringFlag{Name: "port-range", Value: "55000-55999", Usage: "job port range"},
			&cli.StringFlag{Name: "state-dir", Value: "/var/lib/flynn", Usage: "job records, logs and volumes"},
			&cli.StringFlag{Name: "discoverd", EnvVars: []string{"DISCOVERD"}, Usage: "discoverd URL to register the host and its jobs in"},
			&cli.DurationFlag{Name: "discoverd-ttl", Usage: "registration TTL (default discoverd's, 10s)"},
			&cli.StringFlag{Name: "ca-bundle", Value: server.DefaultCABundle, Usage: "CA bundle mounted read-only into jobs (empty: none)"},
			&cli.IntFlag{Name: "max-finished", Value: 100, Usage: "finished jobs kept for inspection"},
			&cli.BoolFlag{Name: "debug", Usage: "debug logging"},
		},
		Action: func(c *cli.Context) error {
			lo, hi, err := ports.ParseRange(c.String("port-range"))
			if err != nil {
				return err
			}
			id := c.String("id")
			if id == "" {
				hn, _ := os.Hostname()
				id = strings.ReplaceAll(hn, ".", "-")
			}
			level := slog.LevelInfo
			if c.Bool("debug") {
				level = slog.LevelDebug
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			caBundle := c.String("ca-bundle")
			if _, err := os.Stat(caBundle); caBundle != "" && err != nil {
				logger.Warn("CA bundle not found; jobs get none", "path", caBundle)
				caBundle = ""
			}
			cfg := server.Config{
				Listen:       c.String("listen"),
				ClusterKey:   c.String("key"),
				DiscoverdURL: c.String("discoverd"),
				DiscoverdTTL: c.Duration("discoverd-ttl"),
				Daemon: daemon.Config{
					HostID:        id,
					ExternalIP:    c.String("external-ip"),
					PortMin:       lo,
					PortMax:       hi,
					StateDir:      c.String("state-dir"),
					CABundle:      caBundle,
					MaxFinished:   c.Int("max-finished"),
					CheckInterval: 100 * time.Millisecond,
				},
			}
			return server.Run(c.Context, cfg, logger)
		},
	}
}
