package server

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/host/firewall"
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
		cmdline.String("app-network", "flynn-apps", "Docker network app jobs (all but host-network ones) run on; created when missing"),
		cmdline.String("app-bridge", "flynnapps0", "the app network's bridge interface (at most 15 characters)"),
		cmdline.String("app-user", "1000:1000", "uid:gid app jobs run as when they name no user or root"),
		cmdline.String("domain", "", "cluster domain: app jobs reach controller.DOMAIN and blobstore.DOMAIN through this node's router (empty: no names)"),
		cmdline.Bool("firewall", true, "fence app jobs off the node but for the router's ports (iptables); false on machines without iptables"),
		cmdline.String("firewall-chain", firewall.DefaultChain, "iptables chain of the app network's rules"),
		cmdline.String("router-ports", firewall.DefaultRouterPorts, "TCP ports app jobs may reach on the node"),
		cmdline.Duration("disk-check-interval", 5*time.Second, "how often the disk use of jobs with a disk limit is measured"),
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
			routerPorts, err := firewall.ParsePorts(c.String("router-ports"))
			if err != nil {
				return Config{}, fmt.Errorf("--router-ports: %w", err)
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

					AppNetwork:        c.String("app-network"),
					AppBridge:         c.String("app-bridge"),
					AppUser:           c.String("app-user"),
					Domain:            c.String("domain"),
					NoFirewall:        !c.Bool("firewall"),
					FirewallChain:     c.String("firewall-chain"),
					RouterPorts:       routerPorts,
					DiskCheckInterval: c.Duration("disk-check-interval"),
				},
			}, nil
		},
		Run: Run,
	}
}
