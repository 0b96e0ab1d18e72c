package cmdline

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

// testConfig is what the test daemon's flags become.
type testConfig struct {
	Addr    string
	Key     string
	Max     int64
	Timeout time.Duration
	Debug   bool
}

// testDaemon records the Config its Run got and what it logged.
func testDaemon(got *testConfig, runErr error) Daemon[testConfig] {
	return Daemon[testConfig]{
		Name:  "testd",
		Usage: "a daemon for tests",
		Flags: append([]cli.Flag{
			String("http-addr", ":1111", "listen address", Was("--listen", "TESTD_ADDR")),
			Size("max-size", 5<<30, "largest blob"),
			Duration("timeout", time.Minute, "how long"),
			Bool("debug", false, "more"),
		}, Secret("cluster-key", "the cluster key", Was("--auth-key", "AUTH_KEY"))...),
		Config: func(c *cli.Context, _ *slog.Logger) (testConfig, error) {
			key, err := SecretOf(c, "cluster-key")
			if err != nil {
				return testConfig{}, err
			}
			if key == "" {
				return testConfig{}, errors.New("a cluster key is required")
			}
			return testConfig{Addr: c.String("http-addr"), Key: key, Max: SizeOf(c, "max-size"), Timeout: c.Duration("timeout"), Debug: c.Bool("debug")}, nil
		},
		Run: func(ctx context.Context, cfg testConfig, logger *slog.Logger) error {
			*got = cfg
			logger.Info("ran")
			return runErr
		},
	}
}

func TestDaemonCommandLine(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		want     testConfig
		code     int
		warnings []string // substrings of the log or error output
	}{
		{
			name: "defaults and a key from the environment",
			env:  map[string]string{"FLYNN_CLUSTER_KEY": "k"},
			want: testConfig{Addr: ":1111", Key: "k", Max: 5 << 30, Timeout: time.Minute},
		},
		{
			name: "flags",
			args: []string{"--http-addr", ":2", "--max-size", "512MiB", "--timeout", "3s", "--debug", "--cluster-key-file", keyFile},
			want: testConfig{Addr: ":2", Key: "from-file", Max: 512 << 20, Timeout: 3 * time.Second, Debug: true},
		},
		{
			name: "FLYNN_ variables",
			env:  map[string]string{"FLYNN_HTTP_ADDR": ":3", "FLYNN_MAX_SIZE": "1GiB", "FLYNN_CLUSTER_KEY_FILE": keyFile},
			want: testConfig{Addr: ":3", Key: "from-file", Max: 1 << 30, Timeout: time.Minute},
		},
		{
			name:     "deprecated names still work, with warnings",
			args:     []string{"--listen", ":4", "--auth-key", "old"},
			want:     testConfig{Addr: ":4", Key: "old", Max: 5 << 30, Timeout: time.Minute},
			warnings: []string{"--listen is deprecated; use --http-addr or $FLYNN_HTTP_ADDR", "--auth-key is deprecated; use --cluster-key-file or $FLYNN_CLUSTER_KEY"},
		},
		{
			name:     "deprecated variables",
			env:      map[string]string{"TESTD_ADDR": ":5", "AUTH_KEY": "old"},
			want:     testConfig{Addr: ":5", Key: "old", Max: 5 << 30, Timeout: time.Minute},
			warnings: []string{"$TESTD_ADDR is deprecated; use --http-addr or $FLYNN_HTTP_ADDR", "$AUTH_KEY is deprecated"},
		},
		{
			name:     "the new variable wins without a warning",
			env:      map[string]string{"TESTD_ADDR": ":5", "FLYNN_HTTP_ADDR": ":6", "FLYNN_CLUSTER_KEY": "k"},
			want:     testConfig{Addr: ":6", Key: "k", Max: 5 << 30, Timeout: time.Minute},
			warnings: []string{"!deprecated"},
		},
		{
			name:     "a secret as an argument is warned about",
			args:     []string{"--cluster-key", "visible"},
			want:     testConfig{Addr: ":1111", Key: "visible", Max: 5 << 30, Timeout: time.Minute},
			warnings: []string{"--cluster-key puts a secret in the process list; use --cluster-key-file or $FLYNN_CLUSTER_KEY"},
		},
		{name: "a missing key is a usage error", code: 2, warnings: []string{"testd: a cluster key is required (see --help)"}},
		{name: "a bad size", args: []string{"--max-size", "5GB"}, env: map[string]string{"FLYNN_CLUSTER_KEY": "k"}, code: 2, warnings: []string{"want bytes, or a whole number with KiB"}},
		{name: "an unknown flag", args: []string{"--nope"}, code: 2, warnings: []string{"flag provided but not defined: -nope"}},
		{name: "a stray argument", args: []string{"extra"}, env: map[string]string{"FLYNN_CLUSTER_KEY": "k"}, code: 2, warnings: []string{"unexpected arguments: extra"}},
		{name: "a bad log level", args: []string{"--log-level", "loud"}, env: map[string]string{"FLYNN_CLUSTER_KEY": "k"}, code: 2, warnings: []string{"--log-level \"loud\""}},
		{name: "json logs", args: []string{"--log-format", "json"}, env: map[string]string{"FLYNN_CLUSTER_KEY": "k"}, want: testConfig{Addr: ":1111", Key: "k", Max: 5 << 30, Timeout: time.Minute}, warnings: []string{`"msg":"ran","component":"testd"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var got testConfig
			var stderr bytes.Buffer
			args := append([]string{"testd"}, tt.args...)
			// Deprecations reads os.Args, as Main passes them.
			saved := os.Args
			os.Args = args
			defer func() { os.Args = saved }()
			code := Execute(t.Context(), testDaemon(&got, nil).App(), args, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tt.code, stderr.String())
			}
			if code == 0 && got != tt.want {
				t.Errorf("config = %+v, want %+v", got, tt.want)
			}
			for _, w := range tt.warnings {
				if not, ok := strings.CutPrefix(w, "!"); ok {
					if strings.Contains(stderr.String(), not) {
						t.Errorf("output has %q:\n%s", not, stderr.String())
					}
					continue
				}
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

func TestRunErrorExitsOne(t *testing.T) {
	t.Setenv("FLYNN_CLUSTER_KEY", "k")
	var got testConfig
	var stderr bytes.Buffer
	code := Execute(t.Context(), testDaemon(&got, errors.New("port taken")).App(), []string{"testd"}, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "testd: port taken") {
		t.Fatalf("exit %d, output %q; want 1 and the error", code, stderr.String())
	}
}

func TestDaemonAsSubcommand(t *testing.T) {
	t.Setenv("FLYNN_CLUSTER_KEY", "k")
	var got testConfig
	app := &cli.App{Name: "flynn-host", Commands: []*cli.Command{testDaemon(&got, nil).Command("daemon")}}
	var stderr bytes.Buffer
	if code := Execute(t.Context(), app, []string{"flynn-host", "daemon", "--http-addr", ":7"}, &stderr); code != 0 || got.Addr != ":7" {
		t.Fatalf("exit %d, config %+v, output %q", code, got, stderr.String())
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", 1 << 20, true},
		{"512MiB", 512 << 20, true},
		{"5GiB", 5 << 30, true},
		{"2TiB", 2 << 40, true},
		{"16KiB", 16 << 10, true},
		{"100B", 100, true},
		{" 1 GiB ", 1 << 30, true},
		{"5GB", 0, false},
		{"1.5GiB", 0, false},
		{"-1", 0, false},
		{"", 0, false},
		{"9999999999TiB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok {
			if back, err := ParseSize(FormatSize(got)); err != nil || back != got {
				t.Errorf("FormatSize(%d) = %q does not read back: %d, %v", got, FormatSize(got), back, err)
			}
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"512MiB", "1", "5GiB", "xTiB", "-3KiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d < 0", s, n)
		}
		if back, err := ParseSize(FormatSize(n)); err != nil || back != n {
			t.Fatalf("FormatSize(%d) = %q reads back as %d, %v", n, FormatSize(n), back, err)
		}
	})
}

func TestJobPortAddr(t *testing.T) {
	const def = "127.0.0.1:9100"
	tests := []struct {
		name string
		args []string
		env  map[string]string
		n    int
		want string
	}{
		{name: "outside a job: the default", want: def},
		{name: "a job: its port on the node's address", env: map[string]string{"PORT_0": "4000", "FLYNN_EXTERNAL_IP": "10.0.0.2"}, want: "10.0.0.2:4000"},
		{name: "a job's second port", env: map[string]string{"PORT_0": "4000", "PORT_1": "4001", "FLYNN_EXTERNAL_IP": "10.0.0.2"}, n: 1, want: "10.0.0.2:4001"},
		{name: "a job without that port: the default", env: map[string]string{"PORT_0": "4000", "FLYNN_EXTERNAL_IP": "10.0.0.2"}, n: 1, want: def},
		{name: "$PORT alone: the default", env: map[string]string{"PORT": "4000", "FLYNN_EXTERNAL_IP": "10.0.0.2"}, want: def},
		{name: "the node's address by flag", args: []string{"--external-ip", "10.0.0.3"}, env: map[string]string{"PORT_0": "4000"}, want: "10.0.0.3:4000"},
		{name: "an IPv6 node", env: map[string]string{"PORT_0": "4000", "FLYNN_EXTERNAL_IP": "fd00::2"}, want: "[fd00::2]:4000"},
		{name: "no node address: every interface", env: map[string]string{"PORT_0": "4000"}, want: ":4000"},
		{name: "the flag wins in a job", args: []string{"--metrics-addr", ":9"}, env: map[string]string{"PORT_0": "4000", "FLYNN_EXTERNAL_IP": "10.0.0.2"}, want: ":9"},
		{name: "its variable wins in a job", env: map[string]string{"FLYNN_METRICS_ADDR": ":8", "PORT_0": "4000", "FLYNN_EXTERNAL_IP": "10.0.0.2"}, want: ":8"},
		{name: "set empty in a job: none", env: map[string]string{"FLYNN_METRICS_ADDR": "", "PORT_0": "4000", "FLYNN_EXTERNAL_IP": "10.0.0.2"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"PORT", "PORT_0", "PORT_1", "FLYNN_EXTERNAL_IP", "FLYNN_METRICS_ADDR"} {
				t.Setenv(k, "") // for t's end to restore it
				os.Unsetenv(k)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var got string
			app := &cli.App{
				Name:  "testd",
				Flags: []cli.Flag{String("metrics-addr", def, "metrics listen address"), String("external-ip", "", "this node's address")},
				Action: func(c *cli.Context) error {
					got = JobPortAddr(c, "metrics-addr", tt.n)
					return nil
				},
			}
			if err := app.RunContext(t.Context(), append([]string{"testd"}, tt.args...)); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("JobPortAddr = %q, want %q", got, tt.want)
			}
		})
	}
}
