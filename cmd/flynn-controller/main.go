// Command flynn-controller serves the controller API over Postgres.
//
//	flynn-controller [--http-addr :8081] [--database-url URL] [--auth-key KEY]
//
// Flags default from the environment: $PORT (listen on ":$PORT"),
// $DATABASE_URL, $AUTH_KEY or $FLYNN_AUTH_KEY. Migrations run at start.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/openflynn/flynn/controller/server"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := parseConfig(os.Args[1:])
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

func parseConfig(args []string) (server.Config, error) {
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
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if cfg.DatabaseURL == "" {
		return cfg, fmt.Errorf("a database URL is required (--database-url or $DATABASE_URL)")
	}
	return cfg, nil
}
