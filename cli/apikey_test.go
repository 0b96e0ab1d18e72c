package cli

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/controller"
)

// usePersonKey makes the harness's CLI use a new API key named name
// instead of the controller key, and returns the key.
func (h *harness) usePersonKey(name string) *controller.APIKey {
	h.t.Helper()
	k, err := h.api.CreateAPIKey(context.Background(), name)
	if err != nil {
		h.t.Fatalf("create API key %q: %v", name, err)
	}
	f, err := config.Load(h.env.ConfigPath)
	if err != nil {
		h.t.Fatal(err)
	}
	f.Clusters[0].Key = k.Secret
	if err := f.Save(h.env.ConfigPath); err != nil {
		h.t.Fatal(err)
	}
	return k
}

var secretLine = regexp.MustCompile(`(?m)^    ([0-9a-f]{64})$`)

func TestAPIKeyCommands(t *testing.T) {
	h := newHarness(t)
	h.usePersonKey("admin")

	out := h.ok("api-key", "add", "alice")
	m := secretLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("api-key add printed no secret:\n%s", out)
	}
	secret := m[1]
	wantLine := "    flynn cluster add -g 127.0.0.1:2222 --controller-url " + h.url + " test example.test - <<<" + secret + "\n"
	if !strings.HasPrefix(out, `Added API key "alice" (`) || !strings.Contains(out, wantLine) || !strings.Contains(out, "flynn api-key revoke alice") {
		t.Fatalf("api-key add printed:\n%s\nwant the key, its secret and the line\n%s", out, wantLine)
	}

	// The secret works: a colleague adds the cluster with it, from stdin.
	colleague := *h
	colleague.env.ConfigPath = t.TempDir() + "/.flynnrc"
	if out := colleague.runInput(secret+"\n", "cluster", "add", "--controller-url", h.url, "test", "example.test", "-"); out.code != 0 {
		t.Fatalf("cluster add with alice's secret: exit %d, %s", out.code, out.stderr)
	}
	colleague.ok("apps")

	out = squash(h.ok("api-key", "list"))
	if !strings.HasPrefix(out, "NAME ID ADDED\nadmin ") || !strings.Contains(out, "\nalice ") || strings.Contains(out, secret) {
		t.Fatalf("api-key list:\n%s", out)
	}
	var keys []*controller.APIKey
	if err := json.Unmarshal([]byte(h.ok("api-key", "--json")), &keys); err != nil || len(keys) != 2 || keys[1].Name != "alice" || keys[1].Secret != "" {
		t.Fatalf("api-key --json = %+v, %v", keys, err)
	}
	var created controller.APIKey
	if err := json.Unmarshal([]byte(h.ok("api-key", "add", "bob", "--json")), &created); err != nil || created.Name != "bob" || len(created.Secret) != 64 {
		t.Fatalf("api-key add --json = %+v, %v", created, err)
	}

	h.fails(`name: 'not a name' does not match pattern`, "api-key", "add", "not a name")
	h.fails(`API key already exists`, "api-key", "add", "alice")
	if out := h.ok("api-key", "revoke", "alice"); out != "API key \"alice\" revoked.\n" {
		t.Fatalf("api-key revoke printed %q", out)
	}
	colleague.fails("check the cluster's API key", "apps")
	h.ok("api-key", "revoke", created.ID)
	h.fails("API key not found", "api-key", "revoke", "alice")
	// Only admin's own key is left: revoking it takes the cluster key.
	h.fails("admin is the last API key", "api-key", "revoke", "admin")
	h.env.ClusterKey = testKey
	h.ok("api-key", "revoke", "admin", "--system")
	h.fails("check the cluster's API key", "apps")
}
