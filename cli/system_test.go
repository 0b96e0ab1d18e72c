package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
)

// TestSystemApps: commands that change a system app refuse without
// --system, and with it use the cluster key from $FLYNN_CLUSTER_KEY or
// --cluster-key-file, never the user's API key.
func TestSystemApps(t *testing.T) {
	h := newHarness(t)
	h.usePersonKey("alice")
	ctx := context.Background()
	sys := &controller.App{Name: "router", System: true}
	if err := h.api.CreateApp(ctx, sys); err != nil {
		t.Fatal(err)
	}
	rel := h.deploy(sys, nil)
	route := &controller.Route{Type: controller.RouteTypeHTTP, Service: "router-web", Domain: "router.example.test"}
	if err := h.api.CreateRoute(ctx, sys.ID, route); err != nil {
		t.Fatal(err)
	}

	changes := [][]string{
		{"scale", "web=2"},
		{"env", "set", "A=1"},
		{"env", "unset", "A"},
		{"limit", "set", "web", "memory=2GiB"},
		{"rollback", rel.ID},
		{"release", "add", "flynn/stack:1"},
		{"stack", "set", "flynn-trixie"},
		{"run", "sh"},
		{"kill", "host1-00000000-0000-0000-0000-000000000001"},
		{"restart"},
		{"route", "add", "http", "evil.example.test"},
		{"route", "add", "tcp"},
		{"route", "remove", route.ID},
		{"resource", "add", "postgres"},
		{"resource", "remove", "5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c", "--yes"},
		{"delete", "--yes"},
	}
	for _, args := range changes {
		h.fails("router is a system app, part of the platform; to change it anyway, add --system", append([]string{"-a", "router"}, args...)...)
	}
	// Reading is anyone's.
	if out := squash(h.ok("-a", "router", "info")); !strings.Contains(out, "\nSystem: yes (part of the platform: changing it takes --system)\n") {
		t.Errorf("info does not say router is a system app:\n%s", out)
	}
	h.ok("-a", "router", "env")
	h.ok("-a", "router", "scale")
	h.ok("-a", "router", "limit")

	// --system takes the cluster key from the environment or a file only.
	h.fails("--system needs the cluster key: set $FLYNN_CLUSTER_KEY or give --cluster-key-file FILE", "--system", "-a", "router", "env", "set", "A=1")
	h.env.ClusterKey = "not-the-key"
	h.fails("check the cluster's API key", "--system", "-a", "router", "env", "set", "A=1")
	h.env.ClusterKey = testKey
	if out := h.ok("--system", "-a", "router", "env", "set", "A=1"); !strings.Contains(out, "Deployed release v2 of router") {
		t.Fatalf("env set --system printed %q", out)
	}
	// After the command name too.
	h.ok("-a", "router", "env", "unset", "A", "--system")

	h.env.ClusterKey = ""
	keyFile := filepath.Join(t.TempDir(), "cluster-key")
	if err := os.WriteFile(keyFile, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.ok("-a", "router", "route", "remove", route.ID, "--system", "--cluster-key-file", keyFile)
	h.fails("--cluster-key-file: open", "--system", "--cluster-key-file", keyFile+".missing", "-a", "router", "delete", "--yes")
	h.ok("--system", "--cluster-key-file", keyFile, "-a", "router", "delete", "--yes")
	if _, err := h.api.App(ctx, "router"); err == nil {
		t.Fatal("router was not deleted")
	}

	// Other apps need no --system.
	h.app("plain")
	h.ok("-a", "plain", "env", "set", "A=1")
}
