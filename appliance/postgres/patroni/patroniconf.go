package patroni

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"

	"github.com/openflynn/flynn/appliance/postgres"
)

// layout is where an instance keeps its things: all of it in Home, a
// directory of the postgres user's own, so that Patroni may move or
// remove the data directory (after a failed rewind, say) and make it
// again without needing write access to the volume's root.
type layout struct {
	// Home holds the files below and Postgres's Unix socket.
	Home string
	// PGData is Postgres's data directory.
	PGData string
	// ConfigFile is patroni.yml.
	ConfigFile string
	// CAFile, CertFile and KeyFile are Patroni's etcd TLS files.
	CAFile, CertFile, KeyFile string
	// PGPass is the password file Patroni writes for its own connections.
	PGPass string
}

func newLayout(dataDir string) layout {
	home := filepath.Join(dataDir, "postgres")
	return layout{
		Home:       home,
		PGData:     filepath.Join(home, "pgdata"),
		ConfigFile: filepath.Join(home, "patroni.yml"),
		CAFile:     filepath.Join(home, "etcd-ca.crt"),
		CertFile:   filepath.Join(home, "etcd-client.crt"),
		KeyFile:    filepath.Join(home, "etcd-client.key"),
		PGPass:     filepath.Join(home, "pgpass"),
	}
}

// DCS settings, the same for every instance; Patroni stores them in etcd
// when it initializes the cluster.
const (
	// dcsTTL is the leader key's lease: how long after the primary was lost
	// a replica may take over. Patroni's documentation recommends no less
	// than 20 seconds; the failover bound is 30.
	dcsTTL = 20
	// dcsLoopWait is how often Patroni renews the leader key and looks at
	// the cluster. loop_wait + 2*retry_timeout must stay within ttl, so
	// that a primary that cannot reach etcd demotes itself before its key
	// runs out (2 + 2*5 <= 20).
	dcsLoopWait = 2
	// dcsRetryTimeout bounds a retried etcd or Postgres operation.
	dcsRetryTimeout = 5
	// maxLagOnFailover is how far (bytes of WAL) a replica may be behind
	// the primary's last reported position and still be promoted. In
	// synchronous mode every acknowledged commit is on the synchronous
	// standby whatever its lag, so the bound is generous: WAL streaming
	// behind under a burst of writes must not keep the only candidate
	// from taking over.
	maxLagOnFailover = 64 << 20
)

// etcdHosts are etcd endpoints as Patroni's etcd3 section wants them:
// host:port, with the scheme apart.
type etcdHosts struct {
	Protocol string
	Hosts    []string
}

// parseEtcdEndpoints splits etcd client URLs for Patroni; they must share
// one scheme.
func parseEtcdEndpoints(urls []string) (etcdHosts, error) {
	var e etcdHosts
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return e, fmt.Errorf("etcd endpoint %q: want http(s)://host:port", raw)
		}
		if e.Protocol != "" && e.Protocol != u.Scheme {
			return e, fmt.Errorf("etcd endpoints %v mix http and https", urls)
		}
		e.Protocol = u.Scheme
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "2379")
		}
		e.Hosts = append(e.Hosts, host)
	}
	if len(e.Hosts) == 0 {
		return e, fmt.Errorf("no etcd endpoints")
	}
	return e, nil
}

// restAPIUser is the user of the REST API's unsafe endpoints (restart,
// switchover) as patronictl would use them.
const restAPIUser = "flynn"

// derivedSecret derives a secret for purpose from the cluster key, so that
// every instance knows it without it being handed around.
func derivedSecret(clusterKey, purpose string) string {
	k, err := hkdf.Key(sha256.New, []byte(clusterKey), []byte("flynn-postgres"), purpose, 32)
	if err != nil {
		panic(err) // only for a length HKDF-SHA256 cannot give, which 32 is not
	}
	return hex.EncodeToString(k)
}

// patroniYAML returns patroni.yml for cfg (with defaults) in lay, with
// Patroni reaching etcd at etcd. It is JSON, which YAML parsers read.
func patroniYAML(cfg Config, lay layout, etcd etcdHosts, osUsers []string) ([]byte, error) {
	pgAddr := net.JoinHostPort(cfg.ExternalIP, strconv.Itoa(cfg.Port))
	apiAddr := net.JoinHostPort(cfg.ExternalIP, strconv.Itoa(cfg.APIPort))

	etcd3 := map[string]any{"hosts": etcd.Hosts, "protocol": etcd.Protocol}
	if etcd.Protocol == "https" {
		etcd3["cacert"], etcd3["cert"], etcd3["key"] = lay.CAFile, lay.CertFile, lay.KeyFile
	}
	restapi := map[string]any{"listen": apiAddr, "connect_address": apiAddr}
	if cfg.ClusterKey != "" {
		restapi["authentication"] = map[string]string{"username": restAPIUser, "password": derivedSecret(cfg.ClusterKey, "patroni rest api")}
	}

	// Local connections (Patroni's own, flynn-postgres's to create
	// databases) authenticate by their operating system user, mapped to
	// the superuser; every network connection needs a password.
	hba := []string{
		"local all " + postgres.SuperUser + " peer map=flynn",
		"host replication " + postgres.ReplicationUser + " 0.0.0.0/0 scram-sha-256",
		"host replication " + postgres.ReplicationUser + " ::/0 scram-sha-256",
		"host all all 0.0.0.0/0 scram-sha-256",
		"host all all ::/0 scram-sha-256",
	}
	var ident []string
	for _, u := range osUsers {
		ident = append(ident, "flynn "+u+" "+postgres.SuperUser)
	}

	doc := map[string]any{
		"scope":     postgres.Scope,
		"namespace": postgres.Namespace,
		"name":      cfg.Member,
		"log":       map[string]any{"level": "INFO"},
		"restapi":   restapi,
		"etcd3":     etcd3,
		"bootstrap": map[string]any{
			"dcs": map[string]any{
				"ttl":                     dcsTTL,
				"loop_wait":               dcsLoopWait,
				"retry_timeout":           dcsRetryTimeout,
				"maximum_lag_on_failover": maxLagOnFailover,
				// With two or more instances a commit is acknowledged once
				// it is on a synchronous standby too, and only that standby
				// may be promoted; not strict, so that a lone instance (a
				// single-node cluster, or the survivor of a failover) still
				// takes writes.
				"synchronous_mode":        true,
				"synchronous_mode_strict": false,
				"synchronous_node_count":  1,
				// A primary that loses etcd (discoverd restarting on a
				// single node) stays primary while it reaches every member,
				// instead of going read-only.
				"failsafe_mode": true,
				"postgresql": map[string]any{
					"use_pg_rewind": true,
					"use_slots":     true,
					"parameters": map[string]any{
						// Patroni itself keeps wal_level replica, hot_standby
						// and wal_log_hints (for pg_rewind) on.
						"max_wal_senders":       10,
						"max_replication_slots": 10,
						"wal_keep_size":         "256MB",
						"synchronous_commit":    "on",
					},
				},
			},
			"initdb": []any{
				map[string]string{"encoding": "UTF8"},
				map[string]string{"locale": "C.UTF-8"},
				"data-checksums",
			},
		},
		"postgresql": map[string]any{
			"listen":          pgAddr,
			"connect_address": pgAddr,
			"data_dir":        lay.PGData,
			"bin_dir":         cfg.BinDir,
			"pgpass":          lay.PGPass,
			"use_unix_socket": true,
			"authentication": map[string]any{
				"superuser":   map[string]string{"username": postgres.SuperUser, "password": cfg.Password},
				"replication": map[string]string{"username": postgres.ReplicationUser, "password": cfg.ReplicationPassword},
			},
			"parameters": map[string]any{
				"unix_socket_directories": lay.Home,
				"password_encryption":     "scram-sha-256",
				// A failed statement is not logged with its text: it may
				// carry a password (CREATE ROLE … PASSWORD), and the logs
				// of platform jobs are read by operators.
				"log_min_error_statement": "panic",
			},
			"pg_hba":   hba,
			"pg_ident": ident,
			// A new replica copies the primary after a checkpoint made at
			// once: the default, spread over checkpoint_completion_target
			// of checkpoint_timeout, keeps it waiting minutes.
			"basebackup": []any{map[string]string{"checkpoint": "fast"}},
		},
		// No watchdog device in a container: fencing is the leader key's
		// lease and Patroni demoting itself when it cannot renew it.
		"watchdog": map[string]any{"mode": "off"},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
