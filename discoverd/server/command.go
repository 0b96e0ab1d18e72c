package server

import (
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/pkg/cmdline"
)

// Daemon is the discoverd binary: its flags and how they become a Config.
func Daemon() cmdline.Daemon[Config] {
	return cmdline.Daemon[Config]{
		Name:  "discoverd",
		Usage: "Flynn's service discovery: an HTTP API and DNS over etcd",
		Description: `Instances register with a TTL and heartbeat by registering again; each
service's oldest live instance leads. The state lives in etcd: an embedded
single-node etcd in --data-dir by default, or an etcd cluster of the
operator's with --etcd-endpoints. With a cluster key, every write needs it.`,
		Flags: append([]cli.Flag{
			cmdline.String("http-addr", ":1111", "HTTP API listen address", cmdline.Was("DISCOVERD_HTTP_ADDR")),
			cmdline.String("dns-addr", "", "DNS listen address, UDP and TCP (empty: no DNS)", cmdline.Was("DISCOVERD_DNS_ADDR")),
			cmdline.List("recursors", "host:port resolvers for names outside .discoverd (none: refuse them)"),
			cmdline.String("data-dir", "/var/lib/flynn/discoverd", "data directory of the embedded etcd", cmdline.Was("DISCOVERD_DATA_DIR")),
			cmdline.List("etcd-endpoints", "endpoints of an external etcd cluster (none: embedded etcd)", cmdline.Was("DISCOVERD_ETCD_ENDPOINTS")),
			cmdline.String("etcd-client-addr", "127.0.0.1:2379", "embedded etcd's client listen address"),
			cmdline.String("etcd-peer-addr", "127.0.0.1:2380", "embedded etcd's peer listen address"),
			cmdline.String("key-prefix", "/discoverd", "etcd key prefix"),
		}, cmdline.Secret("cluster-key", "cluster key every write needs (none: writes are open)", cmdline.Was("--auth-key", "DISCOVERD_AUTH_KEY"))...),
		Config: func(c *cli.Context, _ *slog.Logger) (Config, error) {
			key, err := cmdline.SecretOf(c, "cluster-key")
			if err != nil {
				return Config{}, err
			}
			return Config{
				HTTPAddr:       c.String("http-addr"),
				DNSAddr:        c.String("dns-addr"),
				Recursors:      cmdline.ListOf(c, "recursors"),
				DataDir:        c.String("data-dir"),
				EtcdEndpoints:  cmdline.ListOf(c, "etcd-endpoints"),
				EtcdClientAddr: c.String("etcd-client-addr"),
				EtcdPeerAddr:   c.String("etcd-peer-addr"),
				KeyPrefix:      c.String("key-prefix"),
				AuthKey:        key,
			}, nil
		},
		Run: Run,
	}
}
