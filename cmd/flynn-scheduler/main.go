// Command flynn-scheduler runs the scheduler: it keeps every formation's
// jobs running on the cluster's hosts. Only the leader of the
// "flynn-scheduler" discoverd service acts.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/scheduler"
	"github.com/openflynn/flynn/discoverd"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/pkg/random"
)

func main() {
	fs := flag.NewFlagSet("flynn-scheduler", flag.ExitOnError)
	discoverdURL := fs.String("discoverd", envOr("DISCOVERD", "http://127.0.0.1:1111"), "discoverd URL")
	controllerURL := fs.String("controller", os.Getenv("CONTROLLER_URL"), "controller URL")
	key := fs.String("auth-key", envOr("FLYNN_AUTH_KEY", os.Getenv("CONTROLLER_KEY")), "cluster key (controller, hosts and discoverd)")
	addr := fs.String("addr", envOr("EXTERNAL_IP", "127.0.0.1")+":"+envOr("PORT", "0"), "address this scheduler registers as, for leadership")
	_ = fs.Parse(os.Args[1:])

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "scheduler")
	if err := run(*discoverdURL, *controllerURL, *key, *addr, logger); err != nil {
		fmt.Fprintln(os.Stderr, "flynn-scheduler:", err)
		os.Exit(1)
	}
}

func run(discoverdURL, controllerURL, key, addr string, logger *slog.Logger) error {
	if controllerURL == "" {
		return fmt.Errorf("--controller (or CONTROLLER_URL) is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d := discoverdclient.New(discoverdURL, key)
	d.Logger = logger
	if host, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		// No port of our own: any unique address does for a leadership entry.
		addr = net.JoinHostPort(host, "1")
	}
	inst := &discoverd.Instance{ID: "scheduler-" + random.Hex(6), Addr: addr, Proto: "http"}
	return scheduler.RunLeader(ctx, d, inst, logger, func(ctx context.Context) error {
		hosts, err := scheduler.WatchHosts(ctx, d, key, logger)
		if err != nil {
			return err
		}
		s := scheduler.New(scheduler.Config{}, client.New(controllerURL, key), hosts, logger)
		return s.Run(ctx)
	})
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
