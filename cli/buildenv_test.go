package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
)

// caFile writes a PEM file of self-signed certificates for the names.
func caFile(t *testing.T, names ...string) string {
	t.Helper()
	var all []byte
	for _, n := range names {
		cert, _ := writeCert(t, t.TempDir(), n)
		b, err := os.ReadFile(cert)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, all, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGoldenBuildEnv(t *testing.T) {
	certs, err := readCACerts(caFile(t, "Internal Root CA", "proxy.internal"))
	if err != nil {
		t.Fatal(err)
	}
	for name, be := range map[string]*controller.BuildEnv{
		"build-env":       {Env: map[string]string{"GOPROXY": "https://goproxy.internal", "npm_config_registry": "https://npm.internal/", "PIP_INDEX_URL": "https://pypi.internal/simple"}, CACerts: certs},
		"build-env-empty": {},
	} {
		var buf bytes.Buffer
		if err := renderBuildEnv(&buf, be); err != nil {
			t.Fatal(err)
		}
		golden(t, name, buf.Bytes())
	}
}

func TestBuildEnv(t *testing.T) {
	h := newHarness(t)
	h.usePersonKey("alice")
	if out := h.ok("cluster", "build-env"); out != "No variables set.\nCA certificates: none\n" {
		t.Fatalf("build-env of a new cluster printed %q", out)
	}
	h.fails("the cluster's build env is the operator's: changing it takes --system", "cluster", "build-env", "set", "A=1")
	h.fails("--system needs the cluster key", "--system", "cluster", "build-env", "set", "A=1")

	h.env.ClusterKey = testKey
	ca := caFile(t, "Internal Root CA")
	out := h.ok("--system", "cluster", "build-env", "set", "GOPROXY=https://goproxy.internal", "A=1", "--ca-file", ca)
	if want := "Changed the build env of cluster test; builds and jobs started from now on get it.\nNAME VALUE\nA 1\nGOPROXY https://goproxy.internal\nCA certificates: 1 (Internal Root CA)\n"; squash(out) != want {
		t.Fatalf("build-env set printed:\n%s\nwant:\n%s", squash(out), want)
	}
	// Reading is anyone's, with their API key.
	if out := squash(h.ok("cluster", "build-env")); out != "NAME VALUE\nA 1\nGOPROXY https://goproxy.internal\nCA certificates: 1 (Internal Root CA)\n" {
		t.Fatalf("build-env printed:\n%s", out)
	}
	h.ok("cluster", "build-env", "unset", "A", "--system")
	var be controller.BuildEnv
	if err := json.Unmarshal([]byte(h.ok("cluster", "build-env", "--json")), &be); err != nil {
		t.Fatal(err)
	}
	if len(be.Env) != 1 || be.Env["GOPROXY"] != "https://goproxy.internal" || !strings.HasPrefix(be.CACerts, "-----BEGIN CERTIFICATE-----\n") {
		t.Fatalf("build-env --json after unset A = %+v", be)
	}
	if out := h.ok("--system", "cluster", "build-env", "set", "--no-ca"); !strings.HasSuffix(out, "CA certificates: none\n") {
		t.Fatalf("build-env set --no-ca printed %q", out)
	}

	_, keyFile := writeCert(t, t.TempDir(), "x.test")
	h.fails("block 1 is a PRIVATE KEY, not a CERTIFICATE", "--system", "cluster", "build-env", "set", "--ca-file", keyFile)
	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.fails("holds no PEM certificate", "--system", "cluster", "build-env", "set", "--ca-file", empty)
	h.fails("--ca-file and --no-ca exclude each other", "--system", "cluster", "build-env", "set", "--ca-file", ca, "--no-ca")
	h.fails("want NAME=VALUE…, --ca-file FILE or --no-ca", "--system", "cluster", "build-env", "set")
	h.fails(`"A" is not NAME=VALUE`, "--system", "cluster", "build-env", "set", "A")
	h.fails("want NAME…", "--system", "cluster", "build-env", "unset")
}
