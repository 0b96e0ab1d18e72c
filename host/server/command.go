package server

import (
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/host/ports"
	"github.com/openflynn/flynn/pkg/cmdline"
)

// Daemon is `flynn-host daemon`: the node daemon's flags and how they
// become a Config.
func Daemon() cmdline.Daemon[Config] {
	flags := []cli.Flag{
		cmdline.String("host-id", "", "host id (default: the hostname)", cmdline.Was("--id")),
		cmdline.String("external-ip", "127.0.0.1", "address jobs are reached on", cmdline.Was("EXTERNAL_IP")),
		cmdline.String("http-addr", ":1113", "host API listen address", cmdline.Was("--listen")),
		cmdline.String("port-range", "55000-55999", "range job ports are allocated from"),
		cmdline.String("state-dir", "/var/lib/flynn", "job records, logs and volumes"),
		cmdline.String("discoverd-url", "", "discoverd to register the host and its jobs in (none: no registration)", cmdline.Was("--discoverd", "DISCOVERD")),
		cmdline.Duration("discoverd-ttl", 0, "registration TTL (default discoverd's, 10s)"),
		cmdline.String("ca-bundle", DefaultCABundle, "CA bundle mounted read-only into jobs (empty: none)"),
		cmdline.Int("max-finished", 100, "finished jobs kept for inspection"),
	}
	flags = append(flags, cmdline.Secret("cluster-key", "cluster key the host API requires (none: the API is open)")...)
	return cmdline.Daemon[Config]{
		Name:  "flynn-host",
		Usage: "run the host daemon (job runner and host API)",
		Description: `Runs jobs as Docker containers, serves the host API and registers the
host and its jobs in discoverd. Jobs keep running when the daemon stops;
it adopts them again when it starts.`,
		Flags: flags,
		Config: func(c *cli.Context, logger *slog.Logger) (Config, error) {
			lo, hi, err := ports.ParseRange(c.String("port-range"))
			if err != nil {
				return Config{}, err
			}
			key, err := cmdline.SecretOf(c, "cluster-key")
			if err != nil {
				return Config{}, err
			}
			id := c.String("host-id")
			if id == "" {
				hn, _ := os.Hostname()
				id = strings.ReplaceAll(hn, ".", "-")
			}
			caBundle := c.String("ca-bundle")
			if _, err := os.Stat(caBundle); caBundle != "" && err != nil {
				logger.Warn("CA bundle not found; jobs get none", "path", caBundle)
				caBundle = ""
			}
			return Config{
				Listen:       c.String("http-addr"),
				ClusterKey:   key,
				DiscoverdURL: c.String("discoverd-url"),
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
			}, nil
		},
		Run: Run,
	}
}
