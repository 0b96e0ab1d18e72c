package ports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeepFromEphemeral(t *testing.T) {
	for _, tc := range []struct {
		name, before string
		lo, hi       int
		want         string
	}{
		{"none before", "", 55000, 55999, "55000-55999"},
		{"others kept, in order", "8080,60000-60010", 55000, 55999, "8080,55000-55999,60000-60010"},
		{"covered already", "55000-56999", 56000, 56999, "55000-56999"},
		{"a second node", "55000-55999", 56000, 56999, "55000-55999,56000-56999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ip_local_reserved_ports")
			if err := os.WriteFile(path, []byte(tc.before+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := KeepFromEphemeral(path, tc.lo, tc.hi); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			if got := strings.TrimSpace(string(b)); got != tc.want {
				t.Errorf("reserved %q, want %q", got, tc.want)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(path, []byte("x-y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := KeepFromEphemeral(path, 1, 2); err == nil {
		t.Error("a list it cannot read was overwritten")
	}
}
