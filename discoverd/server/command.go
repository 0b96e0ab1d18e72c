package server

import (
	"log/slog"
	"net"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/pkg/cmdline"
)

// Default ports of a node's discoverd: its HTTP API and its etcd member's
// client and peer ports, on the node's address.
const (
	httpPort       = "1111"
	etcdClientPort = "1121"
	etcdPeerPort   = "1122"
)

// Daemon is the discoverd binary: its flags and how they become a Config.
func Daemon() cmdline.Daemon[Config] {
	return cmdline.Daemon[Config]{
		Name:  "discoverd",
		Usage: "Flynn's service discovery: an HTTP API and DNS over etcd",
		Description: `Instances register with a TTL and heartbeat by registering again; each
service's oldest live instance leads. The state lives in etcd: an embedded
etcd member in --data-dir by default, or an etcd cluster of the operator's
with --etcd-endpoints. The discoverd on a new node joins the etcd cluster of
the discoverds in --join: the first three nodes' run a member each, later
nodes' are clients of the members. Every write needs the cluster key, and
etcd speaks TLS; without a key (--insecure, development only) writes are
open and etcd speaks plain HTTP.

On a node (--external-ip, which flynn-host sets), discoverd listens on the
node's address: HTTP on :1111, etcd on :1121 (clients) and :1122 (peers).`,
		Flags: append([]cli.Flag{
			cmdline.String("http-addr", ":1111", "HTTP API listen address (default with --external-ip: that IP, port 1111)", cmdline.Was("DISCOVERD_HTTP_ADDR")),
			cmdline.String("dns-addr", "", "DNS listen address, UDP and TCP (empty: no DNS)", cmdline.Was("DISCOVERD_DNS_ADDR")),
			cmdline.List("recursors", "host:port resolvers for names outside .discoverd (none: refuse them)"),
			cmdline.String("data-dir", "/var/lib/flynn/discoverd", "data directory of the embedded etcd", cmdline.Was("DISCOVERD_DATA_DIR")),
			cmdline.List("etcd-endpoints", "endpoints of an external etcd cluster (none: embedded etcd)", cmdline.Was("DISCOVERD_ETCD_ENDPOINTS")),
			cmdline.String("etcd-client-addr", "127.0.0.1:2379", "embedded etcd's client listen address (default with --external-ip: that IP, port 1121)"),
			cmdline.String("etcd-peer-addr", "127.0.0.1:2380", "embedded etcd's peer listen address (default with --external-ip: that IP, port 1122)"),
			cmdline.String("external-ip", "", "this node's address, which discoverd and its etcd listen on"),
			cmdline.String("host-id", "", "this node's host id, its etcd member's name (default: the hostname)"),
			cmdline.List("join", "discoverd URLs of other nodes, whose etcd cluster to join (none: found one)"),
			cmdline.String("key-prefix", "/discoverd", "etcd key prefix"),
			cmdline.Insecure(),
		}, cmdline.Secret("cluster-key", "cluster key every write needs (required unless --insecure)", cmdline.Was("--auth-key", "DISCOVERD_AUTH_KEY"))...),
		Config: func(c *cli.Context, logger *slog.Logger) (Config, error) {
			key, err := cmdline.RequiredKey(c, logger, "cluster-key")
			if err != nil {
				return Config{}, err
			}
			name := c.String("host-id")
			if name == "" {
				if name, err = os.Hostname(); err != nil {
					return Config{}, err
				}
			}
			ip := c.String("external-ip")
			// addr is a listen address flag's value: on a node, the
			// node's address unless the flag was given.
			addr := func(flag, port string) string {
				if ip != "" && !c.IsSet(flag) {
					return net.JoinHostPort(ip, port)
				}
				return c.String(flag)
			}
			return Config{
				HTTPAddr:       addr("http-addr", httpPort),
				DNSAddr:        c.String("dns-addr"),
				Recursors:      cmdline.ListOf(c, "recursors"),
				DataDir:        c.String("data-dir"),
				EtcdEndpoints:  cmdline.ListOf(c, "etcd-endpoints"),
				EtcdClientAddr: addr("etcd-client-addr", etcdClientPort),
				EtcdPeerAddr:   addr("etcd-peer-addr", etcdPeerPort),
				Name:           name,
				Join:           cmdline.ListOf(c, "join"),
				KeyPrefix:      c.String("key-prefix"),
				AuthKey:        key,
			}, nil
		},
		Run: Run,
	}
}
