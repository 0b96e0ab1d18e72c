// Command flynn-controller serves the controller API over Postgres.
//
//	flynn-controller [--http-addr :8081] [--database-url URL] [--auth-key KEY]
//	                 [--discoverd URL] [--cluster-key KEY]
//
// Flags default from the environment: $PORT (listen on ":$PORT"),
// $DATABASE_URL, $AUTH_KEY or $FLYNN_AUTH_KEY, $DISCOVERD, $CLUSTER_KEY
// (default: the auth key). Migrations run at start. With a discoverd URL
// the controller runs one-off jobs (and reads job logs) on the hosts
// registered there; without one those requests answer service_unavailable.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/openflynn/flynn/controller/hostrunner"
	"github.com/openflynn/flynn/controller/server"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := parseConfig(os.Args[1:], logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flynn-controller:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := server.Run(ctx, cfg, logger); err != nil {
		logger.Error("controller stopped", "err", err)
		stop()
		os.Exit(1)
	}
}

func parseConfig(args []string, logger *slog.Logger) (server.Config, error) {
	fs := flag.NewFlagSet("flynn-controller", flag.ContinueOnError)
	defaultAddr := ":8081"
	if port := os.Getenv("PORT"); port != "" {
		defaultAddr = ":" + port
	}
	authKey := os.Getenv("AUTH_KEY")
	if authKey == "" {
		authKey = os.Getenv("FLYNN_AUTH_KEY")
	}
	var cfg server.Config
	fs.StringVar(&cfg.Addr, "http-addr", defaultAddr, "listen address (default from $PORT)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", os.Getenv("DATABASE_URL"), "Postgres URL (default $DATABASE_URL)")
	fs.StringVar(&cfg.AuthKey, "auth-key", authKey, "controller key clients send as the basic-auth password (default $AUTH_KEY or $FLYNN_AUTH_KEY)")
	discoverdURL := fs.String("discoverd", os.Getenv("DISCOVERD"), "discoverd URL, to find hosts for one-off jobs and logs (default $DISCOVERD)")
	clusterKey := fs.String("cluster-key", os.Getenv("CLUSTER_KEY"), "key of the host and discoverd APIs (default $CLUSTER_KEY, else the auth key)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if *discoverdURL != "" {
		key := *clusterKey
		if key == "" {
			key = cfg.AuthKey
		}
		cfg.Runner = hostrunner.New(discoverdclient.New(*discoverdURL, key), key, logger)
	}
	if cfg.DatabaseURL == "" {
		return cfg, fmt.Errorf("a database URL is required (--database-url or $DATABASE_URL)")
	}
	return cfg, nil
}
