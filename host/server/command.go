package server

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/host/firewall"
	"github.com/openflynn/flynn/host/gc"
	"github.com/openflynn/flynn/host/ports"
	"github.com/openflynn/flynn/pkg/cmdline"
)

// Daemon is `flynn-host daemon`: the node daemon's flags and how they
// become a Config.
func Daemon() cmdline.Daemon[Config] {
	node1, _ := NodeDefaults(1)
	flags := []cli.Flag{
		cmdline.Int("node", 1, fmt.Sprintf("this node's number among the nodes of one machine (1-%d): node N's defaults are host id HOSTNAME-node-N, "+
			"external IP 127.0.0.N, state dir %s/node-N, the Nth thousand ports from 55000, app network %s-N on bridge %s-N and chain %s-N "+
			"(node 1's are the defaults shown)", MaxNode, node1.StateDir, node1.AppNetwork, "flynnapps", node1.FirewallChain)),
		cmdline.String("host-id", "", "host id (default: the hostname)", cmdline.Was("--id")),
		cmdline.String("external-ip", node1.ExternalIP, "address jobs are reached on", cmdline.Was("EXTERNAL_IP")),
		cmdline.String("http-addr", "", "host API listen address (default EXTERNAL_IP:1113)", cmdline.Was("--listen")),
		cmdline.String("port-range", fmt.Sprintf("%d-%d", node1.PortMin, node1.PortMax), "range job ports are allocated from"),
		cmdline.String("state-dir", node1.StateDir, "job records, logs and volumes"),
		cmdline.List("discoverd-url", "discoverds to register the host and its jobs in, comma-separated: the first that answers, "+
			"this node's own (http://EXTERNAL_IP:1111) first when listed; jobs get the others as FLYNN_JOIN (none: no registration)",
			cmdline.Was("--discoverd", "DISCOVERD")),
		cmdline.Duration("discoverd-ttl", 0, "registration TTL (default discoverd's, 10s)"),
		cmdline.String("ca-bundle", DefaultCABundle, "CA bundle mounted read-only into jobs (empty: none)"),
		cmdline.Int("max-finished", 100, "finished jobs kept for inspection"),
		cmdline.String("app-network", node1.AppNetwork, "Docker network app jobs (all but host-network ones) run on; created when missing"),
		cmdline.String("app-bridge", node1.AppBridge, "the app network's bridge interface (at most 15 characters)"),
		cmdline.String("app-user", "1000:1000", "uid:gid app jobs run as when they name no user or root"),
		cmdline.String("domain", "", "cluster domain: app jobs reach controller.DOMAIN and blobstore.DOMAIN through this node's router (empty: no names)"),
		cmdline.Bool("firewall", true, "fence app jobs off the node and the other nodes but for the router's ports (iptables); false on machines without iptables"),
		cmdline.String("firewall-chain", node1.FirewallChain, "iptables chain of the app network's rules; the rules towards other nodes are in CHAIN"+firewall.ForwardSuffix),
		cmdline.String("router-ports", firewall.DefaultRouterPorts, "TCP ports app jobs may reach on the node"),
		cmdline.Duration("disk-check-interval", 5*time.Second, "how often the disk use of jobs with a disk limit is measured"),
		cmdline.Int("keep-exited", gc.DefaultKeepExited, "exited job containers kept, the most recent; older ones are removed (see `flynn-host gc`)"),
		cmdline.Duration("gc-interval", gc.DefaultInterval, "how often exited job containers and unused images are removed (0: never; `flynn-host gc` still does)"),
		cmdline.Duration("gc-min-age", gc.DefaultMinAge, "the least age of an image or exited container removed"),
		cmdline.Duration("image-grace", gc.DefaultPlatformGrace, "the least age of an older platform image (flynn/…) removed"),
		cmdline.String("images-manifest", "", "the current images manifest: no image it names is removed (default REPO/bin/images.json with --repo; none: no platform image is removed)"),
		cmdline.String("repo", "", "the Flynn checkout the node was installed from (install-flynn sets FLYNN_REPO)"),
		cmdline.Bool("stop-jobs", false, "stop every job (SIGTERM, then SIGKILL after its grace period) when the daemon stops; "+
			"without it jobs keep running and the next daemon adopts them"),
	}
	flags = append(flags, cmdline.Insecure())
	flags = append(flags, cmdline.Secret("cluster-key", "cluster key the host API requires (required unless --insecure)")...)
	return cmdline.Daemon[Config]{
		Name:  "flynn-host",
		Usage: "run the host daemon (job runner and host API)",
		Description: `Runs jobs as Docker containers, serves the host API and registers the
host and its jobs in discoverd. Jobs keep running when the daemon stops;
it adopts them again when it starts.`,
		Flags: flags,
		Config: func(c *cli.Context, logger *slog.Logger) (Config, error) {
			node, err := NodeDefaults(c.Int("node"))
			if err != nil {
				return Config{}, fmt.Errorf("--node: %w", err)
			}
			// A flag not given takes its node's default.
			str := func(name, nodeDefault string) string {
				if c.IsSet(name) {
					return c.String(name)
				}
				return nodeDefault
			}
			externalIP := str("external-ip", node.ExternalIP)
			lo, hi, err := ports.ParseRange(str("port-range", fmt.Sprintf("%d-%d", node.PortMin, node.PortMax)))
			if err != nil {
				return Config{}, err
			}
			key, err := cmdline.RequiredKey(c, logger, "cluster-key")
			if err != nil {
				return Config{}, err
			}
			id := c.String("host-id")
			if id == "" {
				hn, _ := os.Hostname()
				id = strings.ReplaceAll(hn, ".", "-")
				if node.N > 1 {
					id += "-node-" + strconv.Itoa(node.N)
				}
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
			// The host API listens on the node's address, never on
			// every interface unless asked to (--http-addr :1113).
			listen := str("http-addr", "")
			if listen == "" {
				listen = net.JoinHostPort(externalIP, "1113")
			}
			manifest := c.String("images-manifest")
			if manifest == "" && c.String("repo") != "" {
				manifest = filepath.Join(c.String("repo"), "bin", "images.json")
			}
			return Config{
				Listen:                listen,
				ClusterKey:            key,
				DiscoverdURLs:         cmdline.ListOf(c, "discoverd-url"),
				DiscoverdTTL:          c.Duration("discoverd-ttl"),
				ReservePorts:          true,
				MigrateListenerQueues: true,
				StopJobs:              c.Bool("stop-jobs"),
				Daemon: daemon.Config{
					HostID:        id,
					ExternalIP:    externalIP,
					PortMin:       lo,
					PortMax:       hi,
					StateDir:      str("state-dir", node.StateDir),
					CABundle:      caBundle,
					MaxFinished:   c.Int("max-finished"),
					CheckInterval: 100 * time.Millisecond,

					AppNetwork:        str("app-network", node.AppNetwork),
					AppBridge:         str("app-bridge", node.AppBridge),
					AppUser:           c.String("app-user"),
					Domain:            c.String("domain"),
					NoFirewall:        !c.Bool("firewall"),
					FirewallChain:     str("firewall-chain", node.FirewallChain),
					RouterPorts:       routerPorts,
					DiskCheckInterval: c.Duration("disk-check-interval"),

					CollectGarbage: c.Duration("gc-interval") > 0,
					GC: gc.Config{
						KeepExited:     c.Int("keep-exited"),
						MinAge:         c.Duration("gc-min-age"),
						PlatformGrace:  c.Duration("image-grace"),
						ImagesManifest: manifest,
						Interval:       c.Duration("gc-interval"),
					},
				},
			}, nil
		},
		Run: Run,
	}
}
