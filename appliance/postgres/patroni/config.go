package patroni

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"time"
)

// Config configures one flynn-postgres instance.
type Config struct {
	// Member is this instance's name in the Patroni cluster; required. It
	// must stay the same across restarts on a node (its host id), so that
	// an instance started again rejoins as itself.
	Member string
	// HostID and JobID are recorded in the discoverd registration's
	// metadata; either may be empty.
	HostID, JobID string
	// ExternalIP is the address Postgres and Patroni's REST API listen on
	// and are reached at; required.
	ExternalIP string
	// Port is Postgres's port; default 5432.
	Port int
	// APIPort is the port of Patroni's REST API; default 8008.
	APIPort int
	// DataDir holds everything the instance keeps (under
	// DataDir/postgres); default /data.
	DataDir string
	// BinDir holds Postgres's programs; default
	// /usr/lib/postgresql/15/bin.
	BinDir string
	// Patroni is the patroni program; default "patroni" (looked up in
	// PATH).
	Patroni string
	// User is the operating system user Patroni and Postgres run as when
	// flynn-postgres runs as root (Patroni refuses root); default
	// "postgres". Otherwise they run as flynn-postgres's own user.
	User string
	// ClusterKey is the cluster key: discoverd registrations need it, and
	// the etcd client certificate and the REST API's password are derived
	// from it. Empty only for an insecure cluster, whose etcd speaks plain
	// HTTP.
	ClusterKey string
	// Password is the superuser's password; required.
	Password string
	// ReplicationPassword is the replication user's; default one derived
	// from ClusterKey (then required when ClusterKey is empty).
	ReplicationPassword string
	// Databases are created, when missing, once this instance is the
	// primary.
	Databases []string
	// DiscoverdURL is the discoverd to register in and to ask for the etcd
	// members; required.
	DiscoverdURL string
	// EtcdEndpoints are the etcd client URLs Patroni starts from (it then
	// follows the member list); default the members discoverd lists.
	EtcdEndpoints []string
	// CheckInterval is how often the instance's role is checked, which
	// bounds how long a primary that lost its role stays registered and how
	// long a new one waits to register; default 500ms.
	CheckInterval time.Duration
	// StopTimeout is how long Patroni gets to stop Postgres after SIGTERM
	// before it is killed; default 60s. (flynn-host's grace period for the
	// job may be shorter.)
	StopTimeout time.Duration
	// Output receives Patroni's and Postgres's output; default os.Stderr.
	Output *os.File
	// Started, when set, is called with Patroni's process id once it runs.
	Started func(pid int)
}

// Defaults of Config.
const (
	DefaultPort    = 5432
	DefaultAPIPort = 8008
	DefaultDataDir = "/data"
	DefaultBinDir  = "/usr/lib/postgresql/15/bin"
	DefaultUser    = "postgres"
)

// memberPattern is what Patroni's member names may be here: they become
// etcd keys, Postgres application names and entries of
// synchronous_standby_names.
var memberPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// databasePattern keeps database names to plain identifiers, which need no
// quoting anywhere (URLs, shell, SQL).
var databasePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// withDefaults returns cfg with its defaults filled in.
func (cfg Config) withDefaults() Config {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.APIPort == 0 {
		cfg.APIPort = DefaultAPIPort
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.BinDir == "" {
		cfg.BinDir = DefaultBinDir
	}
	if cfg.Patroni == "" {
		cfg.Patroni = "patroni"
	}
	if cfg.User == "" {
		cfg.User = DefaultUser
	}
	if cfg.ReplicationPassword == "" && cfg.ClusterKey != "" {
		cfg.ReplicationPassword = derivedSecret(cfg.ClusterKey, "replication password")
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = 500 * time.Millisecond
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = time.Minute
	}
	if cfg.Output == nil {
		cfg.Output = os.Stderr
	}
	return cfg
}

// validate reports what is missing or wrong in a Config with defaults.
func (cfg Config) validate() error {
	var errs []error
	if !memberPattern.MatchString(cfg.Member) {
		errs = append(errs, fmt.Errorf("member name %q: want letters, digits, '_', '.' or '-', at most 63", cfg.Member))
	}
	if net.ParseIP(cfg.ExternalIP) == nil {
		errs = append(errs, fmt.Errorf("external IP %q is not an IP address", cfg.ExternalIP))
	}
	for _, p := range []struct {
		name string
		port int
	}{{"port", cfg.Port}, {"REST API port", cfg.APIPort}} {
		if p.port < 1 || p.port > 65535 {
			errs = append(errs, fmt.Errorf("%s %d is out of range", p.name, p.port))
		}
	}
	if cfg.Port == cfg.APIPort {
		errs = append(errs, fmt.Errorf("postgres and the REST API both want port %d", cfg.Port))
	}
	if cfg.DiscoverdURL == "" {
		errs = append(errs, errors.New("no discoverd URL"))
	}
	for name, pw := range map[string]string{"superuser password": cfg.Password, "replication password": cfg.ReplicationPassword} {
		if err := checkPassword(pw); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	for _, db := range cfg.Databases {
		if !databasePattern.MatchString(db) {
			errs = append(errs, fmt.Errorf("database name %q: want lowercase letters, digits and '_', not starting with a digit", db))
		}
	}
	return errors.Join(errs...)
}

// checkPassword refuses passwords flynn-postgres cannot hand to Postgres
// as it would store them: it sends SCRAM verifiers it computes itself,
// and Postgres normalizes passwords other than printable ASCII (SASLprep)
// before hashing them.
func checkPassword(pw string) error {
	if pw == "" {
		return errors.New("missing")
	}
	for _, r := range pw {
		if r < 0x20 || r > 0x7e {
			return errors.New("only printable ASCII characters are supported")
		}
	}
	return nil
}
