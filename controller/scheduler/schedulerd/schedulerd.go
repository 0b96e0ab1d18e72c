// Package schedulerd is the flynn-scheduler binary: its flags, and the
// wiring of leadership (through discoverd), the host set, the scheduler
// itself and its metrics listener. Only the leader of the
// "flynn-scheduler" service acts; every scheduler serves its metrics.
package schedulerd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/scheduler"
	"github.com/openflynn/flynn/discoverd"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/pkg/cmdline"
	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/random"
)

// Config is what a flynn-scheduler process runs with.
type Config struct {
	// Scheduler tunes the scheduler; zero values take its defaults.
	Scheduler scheduler.Config
	// DiscoverdURL is where hosts are found and leadership is decided.
	DiscoverdURL string
	// ControllerURL and ControllerKey reach the controller. The URL may
	// name a discoverd service ("http://controller.discoverd"): calls go
	// through a client that dials a live instance of it at each
	// connection, so the scheduler follows the controller as it is
	// deployed and moves between nodes.
	ControllerURL, ControllerKey string
	// ClusterKey is the key of discoverd and the host APIs.
	ClusterKey string
	// Addr is the address this scheduler registers as, for leadership.
	Addr string
	// MetricsAddr is where GET /metrics answers, to the cluster key (the
	// scheduler has no other HTTP API); empty serves no metrics. The
	// command's default in a job is its first port on its node's address.
	MetricsAddr string
}

// Run registers for leadership and schedules while leading, until ctx
// ends.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	reg := metrics.NewRegistry()
	// One Metrics for every term this process leads: each makes a new
	// Scheduler.
	sc := cfg.Scheduler
	sc.Metrics = scheduler.NewMetrics(reg)
	if cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("scheduler: metrics: %w", err)
		}
		logger.Info("serving metrics", "addr", ln.Addr().String())
		metricsCtx, stopMetrics := context.WithCancel(context.WithoutCancel(ctx))
		served := make(chan struct{})
		go func() {
			defer close(served)
			if err := metrics.Serve(metricsCtx, ln, metrics.Handler(reg, cfg.ClusterKey), logger); err != nil {
				logger.Error("metrics are no longer served", "err", err)
			}
		}()
		// Served until the scheduler has stopped, not only until ctx
		// ends: its last counts are scraped too.
		defer func() {
			stopMetrics()
			<-served
		}()
	}
	d := discoverdclient.New(cfg.DiscoverdURL, cfg.ClusterKey)
	d.Logger = logger
	addr := cfg.Addr
	if host, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		// No port of its own: any unique address does for a leadership entry.
		addr = net.JoinHostPort(host, "1")
	}
	inst := &discoverd.Instance{ID: "scheduler-" + random.Hex(6), Addr: addr, Proto: "http"}
	return scheduler.RunLeader(ctx, d, inst, logger, func(ctx context.Context) error {
		hosts, err := scheduler.WatchHosts(ctx, d, cfg.ClusterKey, logger)
		if err != nil {
			return err
		}
		ctrl := client.NewWithHTTPClient(cfg.ControllerURL, cfg.ControllerKey, discoverdclient.HTTPClient(d))
		return scheduler.New(sc, ctrl, hosts, logger).Run(ctx)
	})
}

// Daemon is the flynn-scheduler binary.
func Daemon() cmdline.Daemon[Config] {
	flags := []cli.Flag{
		cmdline.String("discoverd-url", "", "discoverd, where hosts, the scheduler leader and the controller are (default: http://EXTERNAL_IP:1111, this node's)", cmdline.Was("--discoverd", "DISCOVERD")),
		cmdline.String("controller-url", "", "controller URL; http://controller.discoverd reaches any live controller", cmdline.Was("--controller", "CONTROLLER_URL")),
		cmdline.String("external-ip", "127.0.0.1", "this node's address: the scheduler registers as it (with $PORT), for leadership", cmdline.Was("EXTERNAL_IP")),
		cmdline.Duration("deploy-timeout", 0, "how long a deployment step waits for a new job (default 60s)"),
		cmdline.Duration("host-timeout", 0, "how long one host may take to start or stop a round's jobs (default 30s)"),
		cmdline.String("metrics-addr", "", "where GET /metrics answers, to the cluster key (default in a job: EXTERNAL_IP:$PORT_0, its first port, which flynn-host registers as flynn-scheduler-metrics; empty: no metrics)"),
	}
	flags = append(flags, cmdline.Secret("cluster-key", "key of discoverd and the host APIs", cmdline.Was("--auth-key", "FLYNN_AUTH_KEY"))...)
	flags = append(flags, cmdline.Secret("controller-key", "controller key (default: the cluster key)", cmdline.Was("CONTROLLER_KEY"))...)
	return cmdline.Daemon[Config]{
		Name:  "flynn-scheduler",
		Usage: "Flynn's scheduler: keeps every formation's jobs running on the cluster's hosts",
		Flags: flags,
		Config: func(c *cli.Context, _ *slog.Logger) (Config, error) {
			cfg := Config{
				Scheduler:     scheduler.Config{DeployTimeout: c.Duration("deploy-timeout"), HostTimeout: c.Duration("host-timeout")},
				DiscoverdURL:  c.String("discoverd-url"),
				ControllerURL: c.String("controller-url"),
			}
			var err error
			if cfg.ClusterKey, err = cmdline.SecretOf(c, "cluster-key"); err != nil {
				return cfg, err
			}
			if cfg.ControllerKey, err = cmdline.SecretOf(c, "controller-key"); err != nil {
				return cfg, err
			}
			if cfg.ControllerKey == "" {
				cfg.ControllerKey = cfg.ClusterKey
			}
			if cfg.ControllerURL == "" {
				return cfg, fmt.Errorf("a controller URL is required: --controller-url or $%s", cmdline.Env("controller-url"))
			}
			if cfg.DiscoverdURL == "" {
				cfg.DiscoverdURL = discoverd.NodeURL(c.String("external-ip"))
			}
			port := os.Getenv("PORT")
			if port == "" {
				port = "0"
			}
			cfg.Addr = net.JoinHostPort(c.String("external-ip"), port)
			cfg.MetricsAddr = cmdline.JobPortAddr(c, "metrics-addr", 0)
			return cfg, nil
		},
		Run: Run,
	}
}
