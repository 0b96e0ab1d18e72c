package patroni

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/appliance/postgres"
	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/pkg/cmdline"
)

// Daemon is the flynn-postgres binary: its flags and how they become a
// Config.
func Daemon() cmdline.Daemon[Config] {
	databases := cmdline.List("databases", "databases to create when missing once this instance is the primary, separated by commas or spaces")
	// The release names it after the appliance, as the passwords are.
	databases.EnvVars = []string{postgres.EnvDatabases}
	return cmdline.Daemon[Config]{
		Name:  "flynn-postgres",
		Usage: "one instance of Flynn's highly available Postgres: Patroni, supervised",
		Description: `Runs Patroni (as the postgres user), which runs Postgres and elects the
primary of the cluster "` + postgres.Scope + `" through the cluster's etcd, found through
discoverd. Every other instance streams from the primary, one of them
synchronously. The instance registers in discoverd service "` + postgres.Service + `"
while, and only while, it is the primary (replicas in "` + postgres.ReplicaService + `"),
and creates --databases that are missing once primary.

As a Flynn job: Postgres listens on EXTERNAL_IP:$PORT_0 and Patroni's REST
API on EXTERNAL_IP:$PORT_1; the data lives in --data-dir (a volume). It
exits 1 when Patroni exits, for flynn-host to start it again.`,
		Flags: append(append(append([]cli.Flag{
			cmdline.String("external-ip", "", "this node's address, which Postgres and the REST API listen on (required)"),
			cmdline.Int("port", 0, fmt.Sprintf("Postgres's port (default $PORT_0, else $PORT, else %d)", DefaultPort)),
			cmdline.Int("api-port", 0, fmt.Sprintf("Patroni's REST API port (default $PORT_1, else %d)", DefaultAPIPort)),
			cmdline.String("data-dir", DefaultDataDir, "directory everything is kept in"),
			cmdline.String("bin-dir", DefaultBinDir, "directory of Postgres's programs"),
			cmdline.String("patroni", "patroni", "the patroni program"),
			cmdline.String("user", DefaultUser, "user Patroni and Postgres run as when started as root"),
			cmdline.String("member", "", "name in the Patroni cluster, the same across restarts (default: the host id, else the hostname)"),
			cmdline.String("host-id", "", "this node's host id"),
			cmdline.String("job-id", "", "this job's id"),
			cmdline.List("discoverd-url", "discoverd to register in and find etcd through (default: http://EXTERNAL_IP:1111); of a list, the first"),
			cmdline.List("etcd-endpoints", "etcd client URLs for Patroni (default: the members discoverd lists)"),
			databases,
			cmdline.Insecure(),
		},
			cmdline.Secret("cluster-key", "cluster key: discoverd writes and the etcd client certificate need it (required unless --insecure)")...),
			cmdline.Secret("postgres-password", "the superuser's password (required)")...),
			cmdline.Secret("replication-password", "the replication user's password (default: derived from the cluster key)")...),
		Config: func(c *cli.Context, logger *slog.Logger) (Config, error) {
			key, err := cmdline.RequiredKey(c, logger, "cluster-key")
			if err != nil {
				return Config{}, err
			}
			password, err := cmdline.SecretOf(c, "postgres-password")
			if err != nil {
				return Config{}, err
			}
			replPassword, err := cmdline.SecretOf(c, "replication-password")
			if err != nil {
				return Config{}, err
			}
			port, err := portOf(c, "port", "PORT_0", "PORT")
			if err != nil {
				return Config{}, err
			}
			apiPort, err := portOf(c, "api-port", "PORT_1")
			if err != nil {
				return Config{}, err
			}
			ip := c.String("external-ip")
			member := c.String("member")
			if member == "" {
				member = c.String("host-id")
			}
			if member == "" {
				if member, err = os.Hostname(); err != nil {
					return Config{}, err
				}
			}
			discoverdURL := ""
			if urls := cmdline.ListOf(c, "discoverd-url"); len(urls) > 0 {
				discoverdURL = urls[0]
			} else if ip != "" {
				discoverdURL = discoverd.NodeURL(ip)
			}
			var dbs []string
			for _, v := range cmdline.ListOf(c, "databases") {
				dbs = append(dbs, strings.Fields(v)...)
			}
			cfg := Config{
				Member:              member,
				HostID:              c.String("host-id"),
				JobID:               c.String("job-id"),
				ExternalIP:          ip,
				Port:                port,
				APIPort:             apiPort,
				DataDir:             c.String("data-dir"),
				BinDir:              c.String("bin-dir"),
				Patroni:             c.String("patroni"),
				User:                c.String("user"),
				ClusterKey:          key,
				Password:            password,
				ReplicationPassword: replPassword,
				Databases:           dbs,
				DiscoverdURL:        discoverdURL,
				EtcdEndpoints:       cmdline.ListOf(c, "etcd-endpoints"),
			}
			if cfg.ExternalIP == "" {
				return cfg, fmt.Errorf("no external IP: give --external-ip or $%s", cmdline.Env("external-ip"))
			}
			return cfg, cfg.withDefaults().validate()
		},
		Run: Run,
	}
}

// portOf returns the port flag name, or else the first of the job's port
// variables that is set (flynn-host gives PORT_0, PORT_1…), or 0 for the
// default.
func portOf(c *cli.Context, name string, vars ...string) (int, error) {
	if c.IsSet(name) {
		return c.Int(name), nil
	}
	for _, v := range vars {
		if s := os.Getenv(v); s != "" {
			p, err := strconv.Atoi(s)
			if err != nil {
				return 0, fmt.Errorf("$%s %q is not a port", v, s)
			}
			return p, nil
		}
	}
	return 0, nil
}
