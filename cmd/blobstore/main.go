// Command blobstore serves Flynn's blob storage (slugs, build caches) over
// HTTP; see package blobstore for the API.
//
//	blobstore [--http-addr :5001] [--backend fs|postgres] [--dir DIR]
//	          [--database-url URL] [--max-size 5GiB] [--auth-key KEY]
//	          [--discoverd URL] [--advertise-host IP]
//
// Flags default from the environment: $PORT (listen on ":$PORT", as a Flynn
// job), $DATABASE_URL, $FLYNN_AUTH_KEY or $AUTH_KEY, $DISCOVERD (register as
// service "blobstore" there) and $EXTERNAL_IP (the address registered).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/openflynn/flynn/blobstore/server"
	"github.com/openflynn/flynn/discoverd/client"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "blobstore:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := server.Run(ctx, cfg, logger); err != nil {
		logger.Error("blobstore stopped", "err", err)
		stop()
		os.Exit(1)
	}
}

// parseConfig builds the server's Config from args, with defaults from
// getenv.
func parseConfig(args []string, getenv func(string) string) (server.Config, error) {
	fset := flag.NewFlagSet("blobstore", flag.ContinueOnError)
	addr := server.DefaultHTTPAddr
	if port := getenv("PORT"); port != "" {
		addr = ":" + port
	}
	authKey := getenv("FLYNN_AUTH_KEY")
	if authKey == "" {
		authKey = getenv("AUTH_KEY")
	}
	var (
		cfg          server.Config
		maxSize      string
		discoverdURL string
	)
	fset.StringVar(&cfg.HTTPAddr, "http-addr", addr, "listen address (default from $PORT)")
	fset.StringVar(&cfg.Backend, "backend", server.BackendFS, "storage backend: fs or postgres")
	fset.StringVar(&cfg.Dir, "dir", server.DefaultDir, "root directory of the fs backend")
	fset.StringVar(&cfg.DatabaseURL, "database-url", getenv("DATABASE_URL"), "database of the postgres backend (default $DATABASE_URL)")
	fset.StringVar(&maxSize, "max-size", "5GiB", "largest blob accepted: bytes, or a number with KiB, MiB or GiB")
	fset.StringVar(&cfg.AuthKey, "auth-key", authKey, "cluster key that PUT and DELETE need (default $FLYNN_AUTH_KEY or $AUTH_KEY)")
	fset.StringVar(&discoverdURL, "discoverd", getenv("DISCOVERD"), `discoverd URL to register in as "blobstore" (default $DISCOVERD; none: no registration)`)
	fset.StringVar(&cfg.AdvertiseHost, "advertise-host", getenv("EXTERNAL_IP"), "IP registered in discoverd (default $EXTERNAL_IP, else the listen IP or 127.0.0.1)")
	if err := fset.Parse(args); err != nil {
		return cfg, err
	}
	if fset.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %v", fset.Args())
	}
	size, err := parseSize(maxSize)
	if err != nil {
		return cfg, fmt.Errorf("--max-size: %w", err)
	}
	cfg.MaxSize = size
	switch cfg.Backend {
	case server.BackendFS:
	case server.BackendPostgres:
		if cfg.DatabaseURL == "" {
			return cfg, errors.New("the postgres backend needs --database-url or $DATABASE_URL")
		}
	default:
		return cfg, fmt.Errorf("--backend must be fs or postgres, not %q", cfg.Backend)
	}
	if discoverdURL != "" {
		cfg.Registrar = server.DiscoverdRegistrar{Client: client.New(discoverdURL, cfg.AuthKey)}
	}
	return cfg, nil
}

// parseSize reads "1048576", "512MiB" or "5GiB".
func parseSize(s string) (int64, error) {
	mult := int64(1)
	num := s
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}
