package server

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/syncbuf"
)

// An unknown provider's error names those there are, so that `flynn
// resource add mysql` says what may be added instead.
func TestUnknownProviderNamesTheOthers(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client
	err := second(c.ProvisionResource(ctx, "mysql", &controller.ResourceRequest{}))
	wantCode(t, err, httpjson.CodeNotFound, "")
	if !strings.Contains(err.Error(), `no provider "mysql"; none is registered`) {
		t.Errorf("error %q, want it to say no provider is registered", err)
	}
	for _, name := range []string{"redis", "postgres"} {
		if err := c.CreateProvider(ctx, &controller.Provider{Name: name, URL: "http://" + name + "-api.discoverd/x"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, call := range []struct {
		name string
		err  error
	}{
		{"provision", second(c.ProvisionResource(ctx, "mysql", &controller.ResourceRequest{}))},
		{"get", second(c.Provider(ctx, "mysql"))},
		{"list resources", second(c.ProviderResources(ctx, "mysql"))},
		{"remove", second(c.DeleteResource(ctx, "mysql", "5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c"))},
	} {
		wantCode(t, call.err, httpjson.CodeNotFound, "")
		if !strings.Contains(call.err.Error(), `no provider "mysql"; providers: postgres, redis`) {
			t.Errorf("%s: error %q, want it to name postgres and redis", call.name, call.err)
		}
	}
}

// deleteProvider is a provider whose DELETEs answer status.
type deleteProvider struct {
	srv    *httptest.Server
	mu     sync.Mutex
	status int
	paths  []string
}

func newDeleteProvider(t *testing.T) *deleteProvider {
	p := &deleteProvider{status: http.StatusNoContent}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if r.Method != http.MethodDelete {
			httpjson.Write(w, http.StatusCreated, controller.ProvisionedResource{
				ID:  "db-" + string(rune('a'+len(p.paths))),
				Env: map[string]string{"DATABASE_URL": "postgres://u:pw@db/x", "PGUSER": "u"},
			})
			p.paths = append(p.paths, "POST")
			return
		}
		p.paths = append(p.paths, r.URL.Path)
		if p.status >= 400 {
			http.Error(w, "database busy", p.status)
			return
		}
		w.WriteHeader(p.status)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *deleteProvider) answer(status int) {
	p.mu.Lock()
	p.status = status
	p.mu.Unlock()
}

func (p *deleteProvider) deletes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, path := range p.paths {
		if path != "POST" {
			out = append(out, path)
		}
	}
	return out
}

func TestRemoveResource(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client
	prov := newDeleteProvider(t)
	p := &controller.Provider{Name: "pg", URL: prov.srv.URL + "/databases"}
	if err := c.CreateProvider(ctx, p); err != nil {
		t.Fatal(err)
	}
	web, mine, bare := h.app(t, "web"), h.app(t, "mine"), h.app(t, "bare")
	for _, app := range []*controller.App{web, mine} {
		rel := h.release(t, app, map[string]string{"KEEP": "me"})
		if _, err := c.SetAppRelease(ctx, app.ID, rel.ID); err != nil {
			t.Fatal(err)
		}
	}
	res, err := c.ProvisionResource(ctx, "pg", &controller.ResourceRequest{Apps: []string{web.ID, mine.ID, bare.ID}})
	if err != nil {
		t.Fatal(err)
	}
	// mine changed DATABASE_URL since: that value is its own.
	if _, err := c.PatchRelease(ctx, mine.ID, controller.ReleasePatch{Env: &controller.EnvPatch{Set: map[string]string{"DATABASE_URL": "postgres://elsewhere"}}}); err != nil {
		t.Fatal(err)
	}
	before := map[string]*controller.Release{}
	for _, app := range []*controller.App{web, mine} {
		if before[app.Name], err = c.AppRelease(ctx, app.ID); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := c.StreamEvents(ctx, controller.EventFilter{ObjectTypes: []string{controller.ObjectTypeResource}})
	if err != nil {
		t.Fatal(err)
	}

	// A provider that refuses leaves everything as it was.
	prov.answer(http.StatusInternalServerError)
	err = second(c.DeleteResource(ctx, "pg", res.ID))
	wantCode(t, err, httpjson.CodeServiceUnavailable, "")
	if !strings.Contains(err.Error(), "database busy") {
		t.Errorf("error %q, want the provider's answer", err)
	}
	if _, err := c.Resource(ctx, p.ID, res.ID); err != nil {
		t.Fatalf("after a refused removal: %v", err)
	}

	prov.answer(http.StatusNoContent)
	removed, err := c.DeleteResource(ctx, "pg", res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if removed.ID != res.ID || len(removed.Apps) != 3 {
		t.Fatalf("removed = %+v, want the resource with its 3 apps", removed)
	}
	if got := prov.deletes(); len(got) != 2 || got[1] != "/databases/"+res.ExternalID {
		t.Fatalf("provider DELETEs = %v, want the refused one and /databases/%s", got, res.ExternalID)
	}
	wantCode(t, second(c.Resource(ctx, p.ID, res.ID)), httpjson.CodeNotFound, "")
	for _, app := range []*controller.App{web, mine, bare} {
		if list, err := c.AppResources(ctx, app.ID); err != nil || len(list) != 0 {
			t.Errorf("%s's resources = %v, %v; want none", app.Name, list, err)
		}
	}
	cur, err := c.AppRelease(ctx, web.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version != before["web"].Version+1 || cur.Env["KEEP"] != "me" || len(cur.Env) != 1 || cur.ArtifactID != before["web"].ArtifactID {
		t.Errorf("web's release = v%d %v; want v%d with KEEP only", cur.Version, cur.Env, before["web"].Version+1)
	}
	// mine keeps its own DATABASE_URL and loses the resource's PGUSER.
	cur, err = c.AppRelease(ctx, mine.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Env["DATABASE_URL"] != "postgres://elsewhere" || cur.Env["PGUSER"] != "" || cur.Env["KEEP"] != "me" {
		t.Errorf("mine's env = %v; want its own DATABASE_URL and KEEP", cur.Env)
	}
	if rel, err := c.AppRelease(ctx, bare.ID); err != nil || rel.Env["DATABASE_URL"] != "" {
		t.Errorf("bare's release = %+v, %v; want one without the resource's env", rel, err)
	}
	if e := nextEvent(t, stream); e.ObjectType != controller.ObjectTypeResource || e.Op != controller.OpDelete || e.ObjectID != res.ID {
		t.Errorf("event %s %s %s, want the resource's delete", e.ObjectType, e.Op, e.ObjectID)
	}

	// Gone is gone, and the provider is not asked again.
	wantCode(t, second(c.DeleteResource(ctx, "pg", res.ID)), httpjson.CodeNotFound, "")
	if got := prov.deletes(); len(got) != 2 {
		t.Fatalf("provider DELETEs = %v after removing a removed resource", got)
	}

	// A provider that has no such resource (a retry after its answer was
	// lost) has done what was asked.
	again, err := c.ProvisionResource(ctx, "pg", &controller.ResourceRequest{Apps: []string{web.ID}})
	if err != nil {
		t.Fatal(err)
	}
	prov.answer(http.StatusNotFound)
	if _, err := c.DeleteResource(ctx, p.Name, again.ID); err != nil {
		t.Fatalf("remove with the provider answering 404: %v", err)
	}
}

// A person's API key may not take a resource from a system app.
func TestRemoveSystemAppsResource(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	prov := newDeleteProvider(t)
	if err := h.client.CreateProvider(ctx, &controller.Provider{Name: "pg", URL: prov.srv.URL}); err != nil {
		t.Fatal(err)
	}
	sys := &controller.App{Name: "blobstore", System: true}
	if err := h.client.CreateApp(ctx, sys); err != nil {
		t.Fatal(err)
	}
	res, err := h.client.ProvisionResource(ctx, "pg", &controller.ResourceRequest{Apps: []string{sys.ID}})
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := h.person(t, "alice")
	wantCode(t, second(alice.DeleteResource(ctx, "pg", res.ID)), httpjson.CodeForbidden, "")
	if got := prov.deletes(); len(got) != 0 {
		t.Fatalf("provider DELETEs = %v, want none", got)
	}
	if _, err := h.client.DeleteResource(ctx, "pg", res.ID); err != nil {
		t.Fatalf("system request: %v", err)
	}
}

// A provider's key, the userinfo of its URL, shows in no log line, error
// or event.
func TestProviderKeyNeverShows(t *testing.T) {
	ctx := t.Context()
	store, err := postgres.Open(ctx, pg.Server(t).NewDatabase(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var logs syncbuf.Buffer
	srv, err := New(store, Options{AuthKey: testKey, Logger: slog.New(slog.NewTextHandler(&logs, nil)), HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	c := client.New(hs.URL, testKey)

	const key = "the-provider-key"
	prov := newDeleteProvider(t)
	withKey := func(base, user string) string {
		u, _ := url.Parse(base)
		u.User = url.User(user)
		if user == "" {
			u.User = url.UserPassword("", key)
		}
		return u.String()
	}
	// A listener that is closed: calls to it fail with the URL in the error.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, p := range []*controller.Provider{
		{Name: "as-password", URL: withKey(prov.srv.URL, "")},
		{Name: "as-user", URL: withKey(prov.srv.URL, key)},
		{Name: "gone-password", URL: withKey(gone.URL, "")},
		{Name: "gone-user", URL: withKey(gone.URL, key)},
	} {
		if err := c.CreateProvider(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	app := &controller.App{Name: "web"}
	if err := c.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	var shown []string
	for _, name := range []string{"gone-password", "gone-user"} {
		err := second(c.ProvisionResource(ctx, name, &controller.ResourceRequest{}))
		wantCode(t, err, httpjson.CodeServiceUnavailable, "")
		shown = append(shown, err.Error())
	}
	// Deleting the app deprovisions its resources; a provider that fails
	// is logged.
	for _, name := range []string{"as-password", "as-user"} {
		if _, err := c.ProvisionResource(ctx, name, &controller.ResourceRequest{Apps: []string{app.ID}}); err != nil {
			t.Fatal(err)
		}
	}
	prov.srv.Close()
	if _, err := c.DeleteApp(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "deprovision failed") {
		t.Fatalf("no deprovision failure logged:\n%s", logs.String())
	}
	shown = append(shown, logs.String())
	events, err := store.Events.List(ctx, postgres.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		shown = append(shown, string(e.Data))
	}
	for _, s := range shown {
		if strings.Contains(s, key) {
			t.Errorf("the provider key shows in:\n%s", s)
		}
	}
}
