package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/pkg/tlspin"
)

// TestClusterTLSPin adds a cluster whose controller serves TLS with a
// self-signed certificate, dialled by address (no DNS entry), and checks
// that the pin is checked when adding and on every later connection.
func TestClusterTLSPin(t *testing.T) {
	hs, _ := newController(t, true)
	var mu sync.Mutex
	var seen []string // Host header and SNI of every request
	inner := hs.Config.Handler
	hs.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Host+" "+r.TLS.ServerName)
		mu.Unlock()
		inner.ServeHTTP(w, r)
	})
	h := newHarness(t) // for the CLI environment; its config is replaced
	if err := os.Remove(h.env.ConfigPath); err != nil {
		t.Fatal(err)
	}
	addr := hs.Listener.Addr().String()
	pin := tlspin.Pin(hs.Certificate().Raw)
	wrong := tlspin.Pin([]byte("some other certificate"))

	h.fails("TLS pin mismatch", "cluster", "add", "-p", wrong, "--controller-addr", addr, "prod", "example.test", testKey)
	if _, err := os.Stat(h.env.ConfigPath); !os.IsNotExist(err) {
		t.Fatalf("a cluster with a wrong pin was saved (stat: %v)", err)
	}
	h.fails("check the cluster's API key", "cluster", "add", "-p", pin, "--controller-addr", addr, "prod", "example.test", "wrong-key")

	out := h.ok("cluster", "add", "-p", pin, "-g", "127.0.0.1:2222", "--controller-addr", addr, "prod", "example.test", testKey)
	if !strings.Contains(out, `Cluster "prod" added and set as default`) {
		t.Fatalf("cluster add printed %q", out)
	}
	info, err := os.Stat(h.env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("config mode = %#o, want 0600", info.Mode().Perm())
	}
	h.ok("create", "pinned")
	if out := h.ok("apps"); !strings.Contains(out, "pinned") {
		t.Fatalf("apps over TLS printed %q", out)
	}
	mu.Lock()
	for _, s := range seen {
		if s != "controller.example.test controller.example.test" {
			t.Errorf("request with Host and SNI %q, want controller.example.test for both", s)
		}
	}
	mu.Unlock()

	// A pin changed behind the CLI's back is refused on the next command.
	f, err := config.Load(h.env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	f.Clusters[0].TLSPin = wrong
	if err := f.Save(h.env.ConfigPath); err != nil {
		t.Fatal(err)
	}
	h.fails("TLS pin mismatch", "apps")

	// An https cluster without a pin is refused outright.
	h.fails("needs a TLS pin", "cluster", "add", "--no-check", "nopin", "example.test", testKey)
}

func TestClusterCommands(t *testing.T) {
	h := newHarness(t)
	h.ok("cluster", "add", "--no-check", "--controller-url", "http://127.0.0.1:9", "other", "other.test", "k")
	if out := h.ok("cluster", "default"); out != "test\n" {
		t.Fatalf("cluster default = %q, want the first cluster, test", out)
	}
	h.fails(`cluster "other" exists already`, "cluster", "add", "--no-check", "--controller-url", "http://127.0.0.1:9", "other", "other.test", "k")
	h.ok("cluster", "default", "other")
	out := h.ok("cluster", "list")
	if !strings.Contains(out, "\nother ") || strings.Join(strings.Fields(out[strings.Index(out, "\nother "):]), " ") != "other other.test http://127.0.0.1:9 other.test:2222 *" {
		t.Fatalf("cluster list:\n%s\nwant other as default with git host other.test:2222", out)
	}
	var list []struct {
		Name    string `json:"name"`
		Default bool   `json:"default"`
		Key     string `json:"key"`
	}
	if err := json.Unmarshal([]byte(h.ok("cluster", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[1].Name != "other" || !list[1].Default || list[0].Key != "" {
		t.Fatalf("cluster list --json = %+v, want test and other (default), keys left out", list)
	}
	// -c picks a cluster for one command; the default one is unreachable.
	h.fails("connect", "apps")
	h.ok("-c", "test", "apps")
	h.env.Cluster = "test" // as $FLYNN_CLUSTER
	h.ok("apps")
	h.ok("cluster", "remove", "other")
	h.fails("no such cluster", "cluster", "remove", "other")
	h.fails("no such cluster", "-c", "other", "apps")
}

// TestConfigRefusedWhenReadable checks that a config file others can read
// is not used.
func TestConfigRefusedWhenReadable(t *testing.T) {
	h := newHarness(t)
	if err := os.Chmod(h.env.ConfigPath, 0o644); err != nil {
		t.Fatal(err)
	}
	h.fails("chmod 600", "apps")
}

// TestClusterAddKeyInput: the key comes from stdin ("-") or --key-file,
// so it never shows in `ps`; the argument still works.
func TestClusterAddKeyInput(t *testing.T) {
	h := newHarness(t)
	if err := os.Remove(h.env.ConfigPath); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(emptyFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	add := func(name string, args ...string) []string {
		return append([]string{"cluster", "add", "--controller-url", h.url}, append(args, name, "example.test")...)
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
	}{
		{"stdin", testKey + "\n", append(add("from-stdin"), "-")},
		{"stdin without a newline", testKey, append(add("from-stdin-no-newline"), "-")},
		{"key file", "", add("from-file", "--key-file", keyFile)},
		{"argument", "", append(add("from-arg"), testKey)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.runInput(tt.stdin, tt.args...)
			if res.code != 0 {
				t.Fatalf("flynn %s: exit %d, %s", strings.Join(tt.args, " "), res.code, res.stderr)
			}
		})
	}
	f, err := config.Load(h.env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Clusters) != len(tests) {
		t.Fatalf("%d clusters saved, want %d", len(f.Clusters), len(tests))
	}
	for _, cl := range f.Clusters {
		if cl.Key != testKey {
			t.Errorf("cluster %s saved key %q, want %q", cl.Name, cl.Key, testKey)
		}
	}
	h.fails("read the key from stdin", append(add("no-input"), "-")...)
	h.fails("the key is empty", append(add("empty-file"), "--key-file", emptyFile)...)
	h.fails("--key-file: open", append(add("missing-file"), "--key-file", keyFile+".missing")...)
	if res := h.runInput("wrong-key\n", append(add("wrong"), "-")...); res.code != 1 || !strings.Contains(res.stderr, "cluster wrong not added") {
		t.Fatalf("a wrong key from stdin: exit %d, %q", res.code, res.stderr)
	}
}
