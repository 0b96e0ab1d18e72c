package patroni

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/openflynn/flynn/pkg/cmdline/cmdlinetest"
)

// jobEnv is what flynn-host and the release give a flynn-postgres job.
func jobEnv() map[string]string {
	return map[string]string{
		"PORT":                       "15400",
		"PORT_0":                     "15400",
		"PORT_1":                     "15401",
		"FLYNN_EXTERNAL_IP":          "10.0.0.2",
		"FLYNN_HOST_ID":              "host2",
		"FLYNN_JOB_ID":               "host2-0123",
		"FLYNN_DISCOVERD_URL":        "http://10.0.0.2:1111",
		"FLYNN_CLUSTER_KEY":          "the-cluster-key",
		"FLYNN_POSTGRES_PASSWORD":    "the-superuser-password",
		"FLYNN_REPLICATION_PASSWORD": "the-replication-password",
		"FLYNN_POSTGRES_DATABASES":   "controller blobstore",
	}
}

// jobEnvWithout is jobEnv without keys.
func jobEnvWithout(keys ...string) map[string]string {
	env := jobEnv()
	for _, k := range keys {
		delete(env, k)
	}
	return env
}

// command is flynn-postgres's command line in an environment cleared of
// every variable it reads.
func command() cmdlinetest.Command[Config] {
	return cmdlinetest.Command[Config]{Daemon: Daemon, Unset: []string{
		"PORT", "PORT_0", "PORT_1", "FLYNN_PORT", "FLYNN_API_PORT", "FLYNN_EXTERNAL_IP", "FLYNN_HOST_ID", "FLYNN_JOB_ID",
		"FLYNN_DISCOVERD_URL", "FLYNN_CLUSTER_KEY", "FLYNN_POSTGRES_PASSWORD", "FLYNN_REPLICATION_PASSWORD",
		"FLYNN_POSTGRES_DATABASES", "FLYNN_MEMBER", "FLYNN_DATA_DIR", "FLYNN_ETCD_ENDPOINTS", "FLYNN_INSECURE",
	}}
}

func TestDaemonConfig(t *testing.T) {
	hostname, _ := os.Hostname()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want Config
	}{
		{
			name: "a job",
			env:  jobEnv(),
			want: Config{Member: "host2", HostID: "host2", JobID: "host2-0123", ExternalIP: "10.0.0.2", Port: 15400, APIPort: 15401,
				DataDir: "/data", DiscoverdURL: "http://10.0.0.2:1111", ClusterKey: "the-cluster-key", Password: "the-superuser-password",
				ReplicationPassword: "the-replication-password", Databases: []string{"controller", "blobstore"}},
		},
		{
			name: "defaults without the job's ports and discoverd",
			env:  jobEnvWithout("PORT", "PORT_0", "PORT_1", "FLYNN_DISCOVERD_URL", "FLYNN_HOST_ID", "FLYNN_REPLICATION_PASSWORD", "FLYNN_POSTGRES_DATABASES"),
			want: Config{Member: hostname, JobID: "host2-0123", ExternalIP: "10.0.0.2", DataDir: "/data",
				DiscoverdURL: "http://10.0.0.2:1111", ClusterKey: "the-cluster-key", Password: "the-superuser-password"},
		},
		{
			name: "flags win",
			env:  jobEnv(),
			args: []string{"--port", "6432", "--api-port", "6433", "--member", "m1", "--data-dir", "/tmp/d", "--databases", "a,b",
				"--discoverd-url", "http://10.0.0.9:1111,http://10.0.0.8:1111", "--etcd-endpoints", "https://10.0.0.9:1121"},
			want: Config{Member: "m1", HostID: "host2", JobID: "host2-0123", ExternalIP: "10.0.0.2", Port: 6432, APIPort: 6433,
				DataDir: "/tmp/d", DiscoverdURL: "http://10.0.0.9:1111", EtcdEndpoints: []string{"https://10.0.0.9:1121"},
				ClusterKey: "the-cluster-key", Password: "the-superuser-password", ReplicationPassword: "the-replication-password",
				Databases: []string{"a", "b"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := command().Accepted(t, tt.env, tt.args...)
			got.BinDir, got.Patroni, got.User = "", "", "" // defaults, as flags
			if !configEqual(got, tt.want) {
				t.Errorf("config:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDaemonRefuses(t *testing.T) {
	with := func(k, v string) map[string]string {
		env := jobEnv()
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
		return env
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // in stderr
	}{
		{"no cluster key", with("FLYNN_CLUSTER_KEY", ""), nil, "no cluster-key"},
		{"no password", with("FLYNN_POSTGRES_PASSWORD", ""), nil, "superuser password: missing"},
		{"no replication password and no key", jobEnvWithout("FLYNN_CLUSTER_KEY", "FLYNN_REPLICATION_PASSWORD"), []string{"--insecure"}, "replication password: missing"},
		{"no external IP", with("FLYNN_EXTERNAL_IP", ""), nil, "no external IP"},
		{"bad database name", with("FLYNN_POSTGRES_DATABASES", "controller Blob-store"), nil, `database name "Blob-store"`},
		{"one port for both", with("PORT_1", "15400"), nil, "both want port 15400"},
		{"bad member name", jobEnv(), []string{"--member", "a b"}, `member name "a b"`},
		{"a password Postgres would normalize", with("FLYNN_POSTGRES_PASSWORD", "pässword"), nil, "printable ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			command().Refused(t, tt.env, tt.want, tt.args...)
		})
	}
}

// The secrets come from the environment or files, never the argument
// list, and none of them is written to the log.
func TestDaemonSecretsStayOutOfLogs(t *testing.T) {
	env := jobEnv()
	dir := t.TempDir()
	pwFile := dir + "/pw"
	if err := os.WriteFile(pwFile, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	delete(env, "FLYNN_POSTGRES_PASSWORD")
	r := command().Parse(t, env, "--postgres-password-file", pwFile)
	if r.Code != 0 || !r.Ran {
		t.Fatalf("exit %d, ran %v: %s", r.Code, r.Ran, r.Output)
	}
	if r.Config.Password != "from-a-file" {
		t.Errorf("password from file = %q", r.Config.Password)
	}
	for _, secret := range []string{"from-a-file", env["FLYNN_CLUSTER_KEY"], env["FLYNN_REPLICATION_PASSWORD"]} {
		if strings.Contains(r.Output, secret) {
			t.Errorf("stderr has a secret: %s", r.Output)
		}
	}
}

func configEqual(a, b Config) bool {
	return a.Member == b.Member && a.HostID == b.HostID && a.JobID == b.JobID && a.ExternalIP == b.ExternalIP &&
		a.Port == b.Port && a.APIPort == b.APIPort && a.DataDir == b.DataDir && a.DiscoverdURL == b.DiscoverdURL &&
		slices.Equal(a.EtcdEndpoints, b.EtcdEndpoints) && a.ClusterKey == b.ClusterKey && a.Password == b.Password &&
		a.ReplicationPassword == b.ReplicationPassword && slices.Equal(a.Databases, b.Databases)
}
