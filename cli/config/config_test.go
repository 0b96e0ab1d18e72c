package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/openflynn/flynn/cli/config"
)

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".flynnrc")
	f, err := config.Load(path)
	if err != nil {
		t.Fatalf("load missing file: %v", err)
	}
	if len(f.Clusters) != 0 || f.Default != "" {
		t.Fatalf("missing file loaded as %+v, want empty", f)
	}
	a := &config.Cluster{Name: "a", Domain: "a.test", ControllerURL: "https://controller.a.test", Key: "k", TLSPin: "pin", GitHost: "a.test:2222"}
	b := &config.Cluster{Name: "b", Domain: "b.test", ControllerURL: "http://127.0.0.1:1", Key: "k2", GitHost: "127.0.0.1:2222", ControllerAddr: "127.0.0.1:443",
		GitHostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqOvvmYqTQB3PI0bQDXvKTKDsIqnNS7nOA34Rdt4Ib7"}
	for _, c := range []*config.Cluster{a, b} {
		if err := f.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	if f.Default != "a" {
		t.Fatalf("default = %q, want the first cluster added", f.Default)
	}
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %#o, want 0600", info.Mode().Perm())
	}
	got, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, f) {
		t.Fatalf("loaded %+v, want %+v", got, f)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the config (no temporary files left)", len(entries))
	}
}

func TestLoadRefusesReadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".flynnrc")
	if err := os.WriteFile(path, []byte(`{"clusters":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("err = %v, want a refusal that says how to fix the mode", err)
	}
}

func TestClusters(t *testing.T) {
	f := &config.File{}
	if _, err := f.Cluster(""); err == nil || !strings.Contains(err.Error(), "cluster add") {
		t.Fatalf("empty config: err = %v, want a hint to add a cluster", err)
	}
	for _, n := range []string{"a", "b"} {
		if err := f.Add(&config.Cluster{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Add(&config.Cluster{Name: "a"}); err == nil {
		t.Fatal("adding a cluster twice succeeded")
	}
	if err := f.Add(&config.Cluster{Name: " "}); err == nil {
		t.Fatal("adding a cluster without a name succeeded")
	}
	if err := f.SetDefault("b"); err != nil {
		t.Fatal(err)
	}
	if c, err := f.Cluster(""); err != nil || c.Name != "b" {
		t.Fatalf("default cluster = %v, %v; want b", c, err)
	}
	if err := f.SetDefault("c"); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("SetDefault(c) = %v, want ErrNotFound", err)
	}
	if err := f.Remove("b"); err != nil {
		t.Fatal(err)
	}
	if f.Default != "a" {
		t.Fatalf("after removing the default with one cluster left, default = %q, want a", f.Default)
	}
	if err := f.Remove("b"); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("Remove twice = %v, want ErrNotFound", err)
	}
	if got := (&config.Cluster{GitHost: "127.0.0.1:2222"}).GitURL("example"); got != "ssh://git@127.0.0.1:2222/example.git" {
		t.Fatalf("GitURL = %q", got)
	}
}

// TestLoadOldFormat: the original Flynn's TOML ~/.flynnrc is named for what
// it is, with what to do, instead of a JSON parse error.
func TestLoadOldFormat(t *testing.T) {
	tests := []struct {
		name    string
		content string
		old     bool
	}{
		{"cluster tables", "[[cluster]]\n  Name = \"default\"\n  Key = \"abc\"\n  TLSPin = \"x\"\n", true},
		{"default key first", "default = \"prod\"\n\n[[cluster]]\n  Name = \"prod\"\n", true},
		{"comment and blank lines first", "# flynn\n\n  [[cluster]]\n", true},
		{"a table", "[remote]\nname = \"x\"\n", true},
		{"broken JSON", "{\"clusters\": [}", false},
		{"JSON array", "[\"default\"]", false},
		{"something else", "default: prod\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ".flynnrc")
			if err := os.WriteFile(path, []byte(tt.content), config.Mode); err != nil {
				t.Fatal(err)
			}
			_, err := config.Load(path)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if got := errors.Is(err, config.ErrOldFormat); got != tt.old {
				t.Fatalf("Load: %v; old format %v, want %v", err, got, tt.old)
			}
			if tt.old && err.Error() != path+" is an old Flynn (TOML) config; move it aside and add the cluster again with `flynn cluster add` (see `flynn cluster add --help`)" {
				t.Fatalf("Load: %v", err)
			}
		})
	}
}
