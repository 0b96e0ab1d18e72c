package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/openflynn/flynn/controller"
)

// fakeProvider provisions a database per request, each with a
// DATABASE_URL and a PGUSER, and records the DELETEs it gets.
type fakeProvider struct {
	srv     *httptest.Server
	mu      sync.Mutex
	n       int
	deletes []string
}

func newFakeProvider(t *testing.T) *fakeProvider {
	p := &fakeProvider{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if r.Method == http.MethodDelete {
			p.deletes = append(p.deletes, r.URL.Path)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		var req struct {
			Config map[string]string `json:"config"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Config["size"] == "huge" {
			http.Error(w, "bad config", http.StatusBadRequest)
			return
		}
		p.n++
		db := "db" + string(rune('0'+p.n))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(controller.ProvisionedResource{ID: db, Env: map[string]string{"DATABASE_URL": "postgres://u:secret-" + db + "@db/" + db, "PGUSER": "u"}})
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakeProvider) deleted() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.deletes...)
}

func TestResourceAdd(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	h.deploy(app, map[string]string{"KEEP": "yes"})
	provider := newFakeProvider(t)
	if err := h.api.CreateProvider(context.Background(), &controller.Provider{Name: "postgres", URL: provider.srv.URL}); err != nil {
		t.Fatal(err)
	}
	out := h.ok("-a", "example", "resource", "add", "postgres", "--config", `{"size":"small"}`)
	if !strings.HasPrefix(out, "Created resource ") || !strings.HasSuffix(out, " and released example with DATABASE_URL, PGUSER.\n") {
		t.Fatalf("resource add printed %q", out)
	}
	rel, err := h.api.AppRelease(context.Background(), app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Env["DATABASE_URL"] != "postgres://u:secret-db1@db/db1" || rel.Env["KEEP"] != "yes" {
		t.Fatalf("release env after resource add = %v", rel.Env)
	}
	// The controller names the providers there are.
	h.fails(`no provider "redis"; providers: postgres`, "-a", "example", "resource", "add", "redis")
	h.fails("not JSON", "-a", "example", "resource", "add", "postgres", "--config", "{")
	h.fails("bad config", "-a", "example", "resource", "add", "postgres", "--config", `{"size":"huge"}`)
}

func TestResourceListAndRemove(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	app, other := h.app("example"), h.app("other")
	h.deploy(app, map[string]string{"KEEP": "yes"})
	provider := newFakeProvider(t)
	if err := h.api.CreateProvider(ctx, &controller.Provider{Name: "postgres", URL: provider.srv.URL + "/databases"}); err != nil {
		t.Fatal(err)
	}
	h.ok("-a", "example", "resource", "add", "postgres")
	shared, err := h.api.ProvisionResource(ctx, "postgres", &controller.ResourceRequest{Apps: []string{app.ID, other.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if out := h.ok("-a", "other", "resource"); !strings.Contains(out, shared.ID) {
		t.Fatalf("resource (no subcommand) printed %q, want the shared resource", out)
	}

	out := h.ok("-a", "example", "resource", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Fields(lines[0])[1] != "PROVIDER" {
		t.Fatalf("resource list printed %q, want a header and 2 rows", out)
	}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) != 4 || f[1] != "postgres" || f[2]+" "+f[3] != "DATABASE_URL, PGUSER" {
			t.Errorf("row %q: want ID, postgres and the variable names", l)
		}
	}
	if strings.Contains(out, "secret-") {
		t.Errorf("resource list shows a value:\n%s", out)
	}
	var list []*controller.Resource
	if err := json.Unmarshal([]byte(h.ok("-a", "example", "resource", "list", "--json")), &list); err != nil || len(list) != 2 || !strings.HasPrefix(list[0].Env["DATABASE_URL"], "postgres://u:secret-") {
		t.Fatalf("resource list --json = %+v, %v; want both with their values", list, err)
	}
	own := list[0]
	if own.ID == shared.ID {
		own = list[1]
	}

	// Removing asks for the app's name.
	res := h.runInput("nope\n", "-a", "example", "resource", "remove", own.ID)
	if res.code != 1 || !strings.Contains(res.stderr, `Type the app's name to confirm: flynn: confirmation "nope" does not match "example"; nothing removed`) {
		t.Fatalf("remove with a wrong confirmation: %+v", res)
	}
	res = h.runInput("", "-a", "example", "resource", "remove", own.ID)
	if res.code != 1 || !strings.Contains(res.stderr, "flynn: no confirmation read (use --yes") {
		t.Fatalf("remove without input: %+v", res)
	}
	if got := provider.deleted(); len(got) != 0 {
		t.Fatalf("provider DELETEs %v before a confirmation", got)
	}
	res = h.runInput("example\n", "-a", "example", "resource", "remove", own.ID)
	if res.code != 0 || res.stdout != "Removed postgres resource "+own.ID+"; example no longer has DATABASE_URL, PGUSER.\n" ||
		!strings.Contains(res.stderr, "This deletes postgres resource "+own.ID+" and its data; example loses DATABASE_URL, PGUSER.") {
		t.Fatalf("remove confirmed: %+v", res)
	}
	if got := provider.deleted(); len(got) != 1 || got[0] != "/databases/"+own.ExternalID {
		t.Fatalf("provider DELETEs = %v, want /databases/%s", got, own.ExternalID)
	}
	// The shared one is said to go from the other app too.
	res = h.runInput("example\n", "-a", "example", "resource", "remove", shared.ID)
	if res.code != 0 || !strings.Contains(res.stderr, "It is also taken from 1 other app(s).") {
		t.Fatalf("remove of a shared resource: %+v", res)
	}
	rel, err := h.api.AppRelease(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rel.Env) != 1 || rel.Env["KEEP"] != "yes" {
		t.Fatalf("env after removing both = %v, want KEEP only", rel.Env)
	}
	if out := h.ok("-a", "other", "resource", "list"); strings.Count(out, "\n") != 1 {
		t.Fatalf("other's resources after the removal:\n%s", out)
	}

	h.fails("example has no resource "+own.ID, "-a", "example", "resource", "remove", own.ID, "--yes")
	h.fails("want a resource ID", "-a", "example", "resource", "remove")
}

func TestGoldenResources(t *testing.T) {
	var buf bytes.Buffer
	err := renderResources(&buf, []*controller.Resource{
		{ID: "5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c", ProviderID: "p1", Env: map[string]string{"PGUSER": "u", "DATABASE_URL": "postgres://u:pw@db/x"}},
		{ID: "6c1b6f5f-0a4d-4e3b-9c2f-1d7e3e4b5c6d", ProviderID: "p2", Env: map[string]string{"REDIS_URL": "redis://:pw@r:6379"}},
		{ID: "7d2c7a6a-1b5e-4f4c-8d3a-2e8f4f5c6d7e", ProviderID: "gone-provider-id"},
	}, map[string]string{"p1": "postgres", "p2": "redis"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "resources", buf.Bytes())
}
