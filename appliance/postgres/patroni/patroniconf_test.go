package patroni

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/openflynn/flynn/pkg/testdeps"
)

// testConfig is a Config with defaults for the unit tests.
func testConfig() Config {
	return Config{
		Member:              "host1",
		ExternalIP:          "10.0.0.1",
		Port:                15400,
		APIPort:             15401,
		DataDir:             "/data",
		ClusterKey:          "the-cluster-key",
		Password:            "the-superuser-password",
		ReplicationPassword: "the-replication-password",
		DiscoverdURL:        "http://10.0.0.1:1111",
	}.withDefaults()
}

// lookup returns the value at path (keys of nested objects) in doc.
func lookup(doc map[string]any, path string) any {
	var v any = doc
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func TestPatroniYAML(t *testing.T) {
	https := etcdHosts{Protocol: "https", Hosts: []string{"10.0.0.1:1121", "10.0.0.2:1121"}}
	tests := []struct {
		name  string
		tune  func(*Config)
		etcd  etcdHosts
		users []string
		want  map[string]any // path → value, as JSON decodes it
	}{
		{
			name:  "a node of a cluster with a key",
			etcd:  https,
			users: []string{"postgres", "root"},
			want: map[string]any{
				"scope":                                          "flynn-postgres",
				"namespace":                                      "/flynn/",
				"name":                                           "host1",
				"restapi.listen":                                 "10.0.0.1:15401",
				"restapi.connect_address":                        "10.0.0.1:15401",
				"restapi.authentication.username":                "flynn",
				"etcd3.protocol":                                 "https",
				"etcd3.hosts":                                    []any{"10.0.0.1:1121", "10.0.0.2:1121"},
				"etcd3.cacert":                                   "/data/postgres/etcd-ca.crt",
				"etcd3.cert":                                     "/data/postgres/etcd-client.crt",
				"etcd3.key":                                      "/data/postgres/etcd-client.key",
				"bootstrap.dcs.ttl":                              20.0,
				"bootstrap.dcs.loop_wait":                        2.0,
				"bootstrap.dcs.retry_timeout":                    5.0,
				"bootstrap.dcs.synchronous_mode":                 true,
				"bootstrap.dcs.synchronous_mode_strict":          false,
				"bootstrap.dcs.postgresql.use_pg_rewind":         true,
				"postgresql.listen":                              "10.0.0.1:15400",
				"postgresql.connect_address":                     "10.0.0.1:15400",
				"postgresql.data_dir":                            "/data/postgres/pgdata",
				"postgresql.bin_dir":                             "/usr/lib/postgresql/15/bin",
				"postgresql.pgpass":                              "/data/postgres/pgpass",
				"postgresql.authentication.superuser.username":   "postgres",
				"postgresql.authentication.superuser.password":   "the-superuser-password",
				"postgresql.authentication.replication.username": "replicator",
				"postgresql.authentication.replication.password": "the-replication-password",
				"postgresql.parameters.unix_socket_directories":  "/data/postgres",
				"postgresql.parameters.password_encryption":      "scram-sha-256",
				"postgresql.pg_ident":                            []any{"flynn postgres postgres", "flynn root postgres"},
				"watchdog.mode":                                  "off",
			},
		},
		{
			name:  "an insecure cluster",
			tune:  func(c *Config) { c.ClusterKey = "" },
			etcd:  etcdHosts{Protocol: "http", Hosts: []string{"127.0.0.1:2379"}},
			users: []string{"me"},
			want: map[string]any{
				"etcd3.protocol":         "http",
				"etcd3.cacert":           nil,
				"restapi.authentication": nil,
				"postgresql.pg_ident":    []any{"flynn me postgres"},
			},
		},
		{
			name:  "IPv6",
			tune:  func(c *Config) { c.ExternalIP = "fd00::1" },
			etcd:  https,
			users: []string{"postgres"},
			want: map[string]any{
				"restapi.listen":    "[fd00::1]:15401",
				"postgresql.listen": "[fd00::1]:15400",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.tune != nil {
				tt.tune(&cfg)
			}
			b, err := patroniYAML(cfg, newLayout(cfg.DataDir), tt.etcd, tt.users)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, b)
			}
			for path, want := range tt.want {
				got, _ := json.Marshal(lookup(doc, path))
				w, _ := json.Marshal(want)
				if string(got) != string(w) {
					t.Errorf("%s = %s, want %s", path, got, w)
				}
			}
			// Patroni's rule: a primary that cannot renew its key demotes
			// itself before the key runs out.
			if dcsLoopWait+2*dcsRetryTimeout > dcsTTL {
				t.Errorf("loop_wait %d + 2*retry_timeout %d > ttl %d", dcsLoopWait, dcsRetryTimeout, dcsTTL)
			}
			hba, _ := lookup(doc, "postgresql.pg_hba").([]any)
			for _, want := range []string{"host all all 0.0.0.0/0 scram-sha-256", "host replication replicator 0.0.0.0/0 scram-sha-256"} {
				if !slices.Contains(hba, any(want)) {
					t.Errorf("pg_hba %v lacks %q", hba, want)
				}
			}
			for _, line := range hba {
				if s := line.(string); strings.Contains(s, "trust") || strings.Contains(s, " md5") || strings.Contains(s, "password") {
					t.Errorf("pg_hba line %q admits weaker than scram-sha-256 or peer", s)
				}
			}
			if strings.Contains(string(b), "the-cluster-key") {
				t.Error("patroni.yml holds the cluster key")
			}
		})
	}
}

// Patroni itself accepts the configuration.
func TestPatroniValidatesConfig(t *testing.T) {
	bin := testdeps.LookPath(t, "patroni")
	cfg := testConfig()
	cfg.ExternalIP = "127.0.0.1"
	dir := t.TempDir()
	lay := newLayout(dir)
	cfg.DataDir = dir
	if _, err := os.Stat(cfg.BinDir); err != nil {
		testdeps.Missing(t, "postgresql-15", err)
	}
	b, err := patroniYAML(cfg, lay, etcdHosts{Protocol: "http", Hosts: []string{"127.0.0.1:2379"}}, []string{"postgres"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(lay.PGData, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "patroni.yml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--validate-config", path).CombinedOutput()
	if err == nil {
		return
	}
	// Patroni 3.0.2's validator also checks what does not hold in a test
	// (loopback addresses, a reachable etcd) and wants what is optional
	// (a rewind user: the superuser by default; bootstrap.pg_hba, which
	// postgresql.pg_hba supersedes). Anything else is a real complaint.
	notHere := []string{
		`connect_address 127.0.0.1:`,
		`etcd3.hosts.0 127.0.0.1:2379 didn't pass validation: '127.0.0.1:2379 is not reachable'`,
		`bootstrap.pg_hba  is not defined.`,
		`postgresql.authentication.rewind  is not defined.`,
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !slices.ContainsFunc(notHere, func(s string) bool { return strings.Contains(line, s) }) {
			t.Errorf("patroni --validate-config: %s", line)
		}
	}
}

// Patroni's command line holds the configuration file alone, and its
// environment none of flynn-postgres's: no secret is in the process list
// or /proc/PID/environ.
func TestPatroniCommandHoldsNoSecret(t *testing.T) {
	t.Setenv("FLYNN_POSTGRES_PASSWORD", "the-superuser-password")
	t.Setenv("FLYNN_CLUSTER_KEY", "the-cluster-key")
	cfg := testConfig()
	lay := newLayout(cfg.DataDir)
	tests := []struct {
		name string
		own  *owner
	}{
		{"as root", &owner{name: "postgres", uid: 101, gid: 104, setuid: true}},
		{"as its own user", &owner{name: "me", uid: 1000, gid: 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := patroniCommand(cfg, lay, tt.own)
			if want := []string{cfg.Patroni, lay.ConfigFile}; !slices.Equal(cmd.Args, want) {
				t.Errorf("args = %q, want %q", cmd.Args, want)
			}
			all := strings.Join(append(slices.Clone(cmd.Args), cmd.Env...), "\n")
			for _, secret := range []string{cfg.Password, cfg.ReplicationPassword, cfg.ClusterKey} {
				if strings.Contains(all, secret) {
					t.Errorf("args or env hold a secret:\n%s", all)
				}
			}
			if cred := cmd.SysProcAttr.Credential; tt.own.setuid != (cred != nil) || (cred != nil && (cred.Uid != 101 || cred.Gid != 104)) {
				t.Errorf("credential = %+v, want the owner's when root", cred)
			}
		})
	}
}

func TestParseEtcdEndpoints(t *testing.T) {
	tests := []struct {
		name    string
		urls    []string
		want    etcdHosts
		wantErr bool
	}{
		{"https members", []string{"https://10.0.0.1:1121", "https://10.0.0.2:1121"}, etcdHosts{"https", []string{"10.0.0.1:1121", "10.0.0.2:1121"}}, false},
		{"default port", []string{"http://127.0.0.1"}, etcdHosts{"http", []string{"127.0.0.1:2379"}}, false},
		{"IPv6", []string{"https://[fd00::1]:1121"}, etcdHosts{"https", []string{"[fd00::1]:1121"}}, false},
		{"mixed schemes", []string{"https://10.0.0.1:1121", "http://10.0.0.2:1121"}, etcdHosts{}, true},
		{"no scheme", []string{"10.0.0.1:1121"}, etcdHosts{}, true},
		{"none", nil, etcdHosts{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEtcdEndpoints(tt.urls)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (got.Protocol != tt.want.Protocol || !slices.Equal(got.Hosts, tt.want.Hosts)) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
