// Command discoverd is Flynn's service discovery daemon: an HTTP API and DNS
// over etcd (embedded single-node by default).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/openflynn/flynn/discoverd/server"
)

func main() {
	var (
		cfg       server.Config
		endpoints string
		recursors string
	)
	fs := flag.NewFlagSet("discoverd", flag.ExitOnError)
	fs.StringVar(&cfg.HTTPAddr, "http-addr", envOr("DISCOVERD_HTTP_ADDR", ":1111"), "HTTP API listen address")
	fs.StringVar(&cfg.DNSAddr, "dns-addr", os.Getenv("DISCOVERD_DNS_ADDR"), "DNS listen address, UDP and TCP (empty: no DNS)")
	fs.StringVar(&recursors, "recursors", "", "comma-separated host:port resolvers for names outside .discoverd (empty: refuse them)")
	fs.StringVar(&cfg.DataDir, "data-dir", envOr("DISCOVERD_DATA_DIR", "/var/lib/flynn/discoverd"), "data directory of the embedded etcd")
	fs.StringVar(&endpoints, "etcd-endpoints", os.Getenv("DISCOVERD_ETCD_ENDPOINTS"), "comma-separated external etcd endpoints (empty: embedded etcd)")
	fs.StringVar(&cfg.EtcdClientAddr, "etcd-client-addr", "127.0.0.1:2379", "embedded etcd client listen address")
	fs.StringVar(&cfg.EtcdPeerAddr, "etcd-peer-addr", "127.0.0.1:2380", "embedded etcd peer listen address")
	fs.StringVar(&cfg.KeyPrefix, "key-prefix", "/discoverd", "etcd key prefix")
	fs.StringVar(&cfg.AuthKey, "auth-key", os.Getenv("DISCOVERD_AUTH_KEY"), "cluster key required on writes (or DISCOVERD_AUTH_KEY)")
	_ = fs.Parse(os.Args[1:])
	cfg.EtcdEndpoints = splitList(endpoints)
	cfg.Recursors = splitList(recursors)

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "discoverd")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := server.Run(ctx, cfg, logger); err != nil {
		fmt.Fprintln(os.Stderr, "discoverd:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
