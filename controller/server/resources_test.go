package server

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func selfSignedCert(t *testing.T, domain string) *controller.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return &controller.Certificate{
		Cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Key:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})),
	}
}

func TestRoutes(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client
	app, other := h.app(t, "web"), h.app(t, "other")

	httpRoute := &controller.Route{Type: "http", Service: "web-web", Domain: "Web.Example.com", Sticky: true, Certificate: selfSignedCert(t, "web.example.com")}
	if err := c.CreateRoute(ctx, app.Name, httpRoute); err != nil {
		t.Fatal(err)
	}
	if httpRoute.Path != "/" || httpRoute.Domain != "web.example.com" || httpRoute.AppID != app.ID || httpRoute.Certificate == nil {
		t.Fatalf("route = %+v, want default path, lower-case domain, app and certificate", httpRoute)
	}
	apiRoute := &controller.Route{Type: "http", Service: "web-api", Domain: "web.example.com", Path: "/api"}
	tcpRoute := &controller.Route{Type: "tcp", Service: "web-db", Port: 3432}
	wildcard := &controller.Route{Type: "http", Service: "other-web", Domain: "*.other.example.com"}
	for _, r := range []*controller.Route{apiRoute, tcpRoute} {
		if err := c.CreateRoute(ctx, app.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CreateRoute(ctx, other.ID, wildcard); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Route(ctx, app.ID, tcpRoute.ID); err != nil || got.Port != 3432 {
		t.Fatalf("Route = %+v, %v", got, err)
	}
	if list, err := c.AppRoutes(ctx, app.ID); err != nil || len(list) != 3 {
		t.Fatalf("AppRoutes = %d, %v; want 3", len(list), err)
	}
	if all, err := c.Routes(ctx); err != nil || len(all) != 4 {
		t.Fatalf("Routes = %d, %v; want 4", len(all), err)
	}

	errs := []struct {
		name  string
		route *controller.Route
		app   string
		code  httpjson.Code
		field string
	}{
		{"same domain and path", &controller.Route{Type: "http", Service: "x", Domain: "WEB.example.com"}, other.ID, httpjson.CodeObjectExists, "domain"},
		{"same tcp port", &controller.Route{Type: "tcp", Service: "x", Port: 3432}, other.ID, httpjson.CodeObjectExists, "port"},
		{"tcp with domain", &controller.Route{Type: "tcp", Service: "x", Port: 3001, Domain: "a.com"}, app.ID, httpjson.CodeValidation, ""},
		{"tcp port below the app range", &controller.Route{Type: "tcp", Service: "x", Port: 2999}, app.ID, httpjson.CodeValidation, "port"},
		{"tcp port above the app range", &controller.Route{Type: "tcp", Service: "x", Port: 4000}, app.ID, httpjson.CodeValidation, "port"},
		{"http without domain", &controller.Route{Type: "http", Service: "x"}, app.ID, httpjson.CodeValidation, ""},
		{"bad type", &controller.Route{Type: "udp", Service: "x", Port: 1}, app.ID, httpjson.CodeValidation, "type"},
		{"bad domain", &controller.Route{Type: "http", Service: "x", Domain: "a b"}, app.ID, httpjson.CodeValidation, "domain"},
		{"bad path", &controller.Route{Type: "http", Service: "x", Domain: "a.com", Path: "api"}, app.ID, httpjson.CodeValidation, "path"},
		{"bad certificate", &controller.Route{Type: "http", Service: "x", Domain: "b.com", Certificate: &controller.Certificate{Cert: "x", Key: "y"}}, app.ID, httpjson.CodeValidation, "certificate"},
		{"no service", &controller.Route{Type: "http", Domain: "c.com"}, app.ID, httpjson.CodeValidation, "service"},
		{"missing app", &controller.Route{Type: "http", Service: "x", Domain: "d.com"}, "nope", httpjson.CodeNotFound, ""},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, c.CreateRoute(ctx, tt.app, tt.route), tt.code, tt.field) })
	}

	if err := c.DeleteRoute(ctx, app.ID, apiRoute.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.DeleteRoute(ctx, app.ID, apiRoute.ID), httpjson.CodeNotFound, "")
	wantCode(t, c.DeleteRoute(ctx, other.ID, tcpRoute.ID), httpjson.CodeNotFound, "") // another app's route
	wantCode(t, second(c.Route(ctx, app.ID, "not-a-uuid")), httpjson.CodeNotFound, "")
}

func sshKey(t *testing.T, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(ssh.MarshalAuthorizedKey(sshPub))[:len(ssh.MarshalAuthorizedKey(sshPub))-1] + " " + comment
}

func TestKeys(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client
	text := sshKey(t, "dev@laptop")
	k, err := c.CreateKey(ctx, text)
	if err != nil {
		t.Fatal(err)
	}
	if k.Comment != "dev@laptop" || len(k.Fingerprint) < 10 || k.Fingerprint[:7] != "SHA256:" {
		t.Fatalf("key = %+v", k)
	}
	byFP, err := c.KeyByFingerprint(ctx, k.Fingerprint)
	if err != nil || byFP.ID != k.ID {
		t.Fatalf("KeyByFingerprint = %+v, %v", byFP, err)
	}
	if list, err := c.Keys(ctx); err != nil || len(list) != 1 {
		t.Fatalf("Keys = %v, %v", list, err)
	}
	wantCode(t, second(c.CreateKey(ctx, text)), httpjson.CodeObjectExists, "key")
	wantCode(t, second(c.CreateKey(ctx, "ssh-rsa AAAAnotakey")), httpjson.CodeValidation, "key")
	wantCode(t, second(c.CreateKey(ctx, "")), httpjson.CodeValidation, "key")
	wantCode(t, second(c.CreateKey(ctx, text+"\n"+sshKey(t, "second"))), httpjson.CodeValidation, "key")
	if err := c.DeleteKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, second(c.Key(ctx, k.ID)), httpjson.CodeNotFound, "")
	wantCode(t, second(c.KeyByFingerprint(ctx, k.Fingerprint)), httpjson.CodeNotFound, "")
	wantCode(t, c.DeleteKey(ctx, k.ID), httpjson.CodeNotFound, "")
}

func TestDeployments(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client
	app, other := h.app(t, "deploy"), h.app(t, "other")
	v1, v2, otherRel := h.release(t, app, nil), h.release(t, app, nil), h.release(t, other, nil)

	// A release without processes has nothing to run: complete at once.
	empty := &controller.Release{AppID: other.ID, ArtifactID: otherRel.ArtifactID}
	if err := c.CreateRelease(ctx, empty); err != nil {
		t.Fatal(err)
	}
	if d, err := c.Deploy(ctx, other.ID, empty.ID); err != nil || d.Status != controller.DeploymentComplete || d.FinishedAt == nil {
		t.Fatalf("deployment of an empty release = %+v, %v; want complete", d, err)
	}
	// An app's first deploy of a release with a web process runs web=1.
	first, err := c.Deploy(ctx, app.ID, v1.ID)
	if err != nil || first.Status != controller.DeploymentPending || first.OldReleaseID != "" || first.Processes["web"] != 1 {
		t.Fatalf("first deployment = %+v, %v; want pending with web=1", first, err)
	}
	if _, err := c.UpdateDeployment(ctx, app.ID, first.ID, controller.DeploymentUpdate{Status: controller.DeploymentComplete}); err != nil {
		t.Fatal(err)
	}
	if cur, err := c.AppRelease(ctx, app.Name); err != nil || cur.ID != v1.ID {
		t.Fatalf("AppRelease = %+v, %v; want v1", cur, err)
	}
	if err := c.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: v1.ID, Processes: map[string]int{"web": 2}}); err != nil {
		t.Fatal(err)
	}
	updated, err := c.SetAppRelease(ctx, app.ID, v2.ID)
	if err != nil || updated.ReleaseID != v2.ID {
		t.Fatalf("SetAppRelease = %+v, %v", updated, err)
	}
	list, err := c.Deployments(ctx, app.ID)
	if err != nil || len(list) != 2 {
		t.Fatalf("Deployments = %v, %v; want 2", list, err)
	}
	d := list[1]
	if d.Status != controller.DeploymentPending || d.OldReleaseID != v1.ID || d.NewReleaseID != v2.ID || d.Processes["web"] != 2 || d.Strategy != controller.StrategyOneByOne {
		t.Fatalf("deployment = %+v, want pending v1→v2 with web=2", d)
	}
	// Setting the current release again is a no-op for PUT, an error for deploy.
	if _, err := c.SetAppRelease(ctx, app.ID, v2.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, second(c.Deploy(ctx, app.ID, v2.ID)), httpjson.CodePreconditionFailed, "")
	wantCode(t, second(c.Deploy(ctx, app.ID, otherRel.ID)), httpjson.CodeValidation, "id")
	wantCode(t, second(c.Deploy(ctx, app.ID, "5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c")), httpjson.CodeValidation, "id")

	for _, status := range []string{controller.DeploymentRunning, controller.DeploymentComplete} {
		got, err := c.UpdateDeployment(ctx, app.ID, d.ID, controller.DeploymentUpdate{Status: status})
		if err != nil || got.Status != status {
			t.Fatalf("UpdateDeployment(%s) = %+v, %v", status, got, err)
		}
	}
	if got, _ := c.Deployment(ctx, app.ID, d.ID); got.FinishedAt == nil {
		t.Fatal("complete deployment has no finish time")
	}
	wantCode(t, second(c.UpdateDeployment(ctx, app.ID, d.ID, controller.DeploymentUpdate{Status: "failed"})), httpjson.CodePreconditionFailed, "")
	wantCode(t, second(c.UpdateDeployment(ctx, app.ID, d.ID, controller.DeploymentUpdate{Status: "done"})), httpjson.CodeValidation, "status")
	wantCode(t, second(c.Deployment(ctx, other.ID, d.ID)), httpjson.CodeNotFound, "")

	// Every step is an event.
	events, err := h.store.Events.List(ctx, eventQuery(app.ID, controller.ObjectTypeDeployment, controller.ObjectTypeAppRelease))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 7 { // 2 × (app_release + deployment create) + 3 updates
		t.Fatalf("%d deployment events, want 7", len(events))
	}
}

// A failed deployment gives the app back its old release: the current
// release, and so `flynn scale` and the next deploy, are what they were.
func TestFailedDeploymentRestoresRelease(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client
	app := h.app(t, "failing")
	v1, v2, v3 := h.release(t, app, nil), h.release(t, app, nil), h.release(t, app, nil)
	first, err := c.Deploy(ctx, app.ID, v1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateDeployment(ctx, app.ID, first.ID, controller.DeploymentUpdate{Status: controller.DeploymentComplete}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: v1.ID, Processes: map[string]int{"web": 2}}); err != nil {
		t.Fatal(err)
	}

	bad, err := c.Deploy(ctx, app.ID, v2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur, err := c.AppRelease(ctx, app.ID); err != nil || cur.ID != v2.ID {
		t.Fatalf("during the deployment AppRelease = %+v, %v; want v2", cur, err)
	}
	if _, err := c.UpdateDeployment(ctx, app.ID, bad.ID, controller.DeploymentUpdate{Status: controller.DeploymentFailed, Error: "web crashed"}); err != nil {
		t.Fatal(err)
	}
	if cur, err := c.AppRelease(ctx, app.ID); err != nil || cur.ID != v1.ID {
		t.Fatalf("after the failed deployment AppRelease = %+v, %v; want v1 back", cur, err)
	}
	next, err := c.Deploy(ctx, app.ID, v3.ID)
	if err != nil {
		t.Fatal(err)
	}
	if next.OldReleaseID != v1.ID || next.Processes["web"] != 2 {
		t.Fatalf("next deployment = %+v; want from v1 with web=2", next)
	}

	// An app whose first deployment fails has no release again.
	fresh := h.app(t, "failing-first")
	only := h.release(t, fresh, nil)
	d, err := c.Deploy(ctx, fresh.ID, only.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateDeployment(ctx, fresh.ID, d.ID, controller.DeploymentUpdate{Status: controller.DeploymentFailed}); err != nil {
		t.Fatal(err)
	}
	if a, err := c.App(ctx, fresh.ID); err != nil || a.ReleaseID != "" {
		t.Fatalf("after a failed first deployment app = %+v, %v; want no release", a, err)
	}
}

// fakeProvider provisions resources over HTTP like a database provider; it
// records the DELETEs (deprovisions) it gets.
func fakeProvider(t *testing.T, status int) (*httptest.Server, *atomic.Int32) {
	srv, calls, _ := fakeProviderWithDeletes(t, status)
	return srv, calls
}

func fakeProviderWithDeletes(t *testing.T, status int) (*httptest.Server, *atomic.Int32, *deleteLog) {
	var calls atomic.Int32
	deletes := &deleteLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			deletes.add(r.URL.Path)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		n := calls.Add(1)
		var req struct {
			Config map[string]string `json:"config"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if status != http.StatusOK {
			http.Error(w, "out of databases", status)
			return
		}
		httpjson.Write(w, http.StatusOK, controller.ProvisionedResource{
			ID:  "db-" + string(rune('0'+n)),
			Env: map[string]string{"DATABASE_URL": "postgres://db/" + req.Config["name"]},
		})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls, deletes
}

// deleteLog is the paths a fake provider was asked to DELETE.
type deleteLog struct {
	mu    sync.Mutex
	paths []string
}

func (d *deleteLog) add(p string) {
	d.mu.Lock()
	d.paths = append(d.paths, p)
	d.mu.Unlock()
}

func (d *deleteLog) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.paths...)
}

func TestProvidersAndResources(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client
	prov, calls := fakeProvider(t, http.StatusOK)
	broken, _ := fakeProvider(t, http.StatusInternalServerError)

	p := &controller.Provider{Name: "postgres", URL: prov.URL}
	if err := c.CreateProvider(ctx, p); err != nil {
		t.Fatal(err)
	}
	bp := &controller.Provider{Name: "broken", URL: broken.URL}
	if err := c.CreateProvider(ctx, bp); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.CreateProvider(ctx, &controller.Provider{Name: "postgres", URL: prov.URL}), httpjson.CodeObjectExists, "name")
	wantCode(t, c.CreateProvider(ctx, &controller.Provider{Name: "ftp", URL: "ftp://x"}), httpjson.CodeValidation, "url")
	if got, err := c.Provider(ctx, "postgres"); err != nil || got.ID != p.ID {
		t.Fatalf("Provider = %+v, %v", got, err)
	}

	app, bare := h.app(t, "withdb"), h.app(t, "bare")
	v1 := h.release(t, app, map[string]string{"KEEP": "me"})
	if _, err := c.SetAppRelease(ctx, app.ID, v1.ID); err != nil {
		t.Fatal(err)
	}
	res, err := c.ProvisionResource(ctx, "postgres", &controller.ResourceRequest{Config: json.RawMessage(`{"name":"main"}`), Apps: []string{app.Name, bare.Name}})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExternalID != "db-1" || res.Env["DATABASE_URL"] != "postgres://db/main" || len(res.Apps) != 2 {
		t.Fatalf("resource = %+v", res)
	}
	cur, err := c.AppRelease(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version != 2 || cur.Env["DATABASE_URL"] != "postgres://db/main" || cur.Env["KEEP"] != "me" || cur.ArtifactID != v1.ArtifactID {
		t.Fatalf("release after provisioning = %+v, want v2 with env merged", cur)
	}
	// The app not yet pushed gets a release of config alone, which its
	// first build starts from.
	if rel, err := c.AppRelease(ctx, bare.ID); err != nil || rel.Env["DATABASE_URL"] != "postgres://db/main" || rel.ArtifactID != "" {
		t.Fatalf("bare app's release = %+v, %v; want the resource's env and no artifact", rel, err)
	}
	if list, err := c.AppResources(ctx, bare.ID); err != nil || len(list) != 1 {
		t.Fatalf("AppResources = %v, %v", list, err)
	}
	if got, err := c.Resource(ctx, p.ID, res.ID); err != nil || got.ExternalID != "db-1" {
		t.Fatalf("Resource = %+v, %v", got, err)
	}
	if list, err := c.ProviderResources(ctx, "postgres"); err != nil || len(list) != 1 {
		t.Fatalf("ProviderResources = %v, %v", list, err)
	}

	before := calls.Load()
	wantCode(t, second(c.ProvisionResource(ctx, "postgres", &controller.ResourceRequest{Apps: []string{"nope"}})), httpjson.CodeValidation, "apps.0")
	if calls.Load() != before {
		t.Fatal("provider called for an unknown app")
	}
	wantCode(t, second(c.ProvisionResource(ctx, "broken", &controller.ResourceRequest{})), httpjson.CodeServiceUnavailable, "")
	wantCode(t, second(c.ProvisionResource(ctx, "missing", &controller.ResourceRequest{})), httpjson.CodeNotFound, "")
	wantCode(t, second(c.Resource(ctx, p.ID, "5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c")), httpjson.CodeNotFound, "")
}

// TestDeleteApp checks that nothing an app owned outlives it, and that the
// scheduler and router hear about every removal.
func TestDeleteApp(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client
	prov, _, deletes := fakeProviderWithDeletes(t, http.StatusOK)
	p := &controller.Provider{Name: "pg", URL: prov.URL}
	if err := c.CreateProvider(ctx, p); err != nil {
		t.Fatal(err)
	}
	app, keeper := h.app(t, "doomed"), h.app(t, "keeper")
	rel := h.release(t, app, nil)
	if _, err := c.SetAppRelease(ctx, app.ID, rel.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: map[string]int{"web": 3}}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutJob(ctx, &controller.Job{ID: "h-1", AppID: app.ID, ReleaseID: rel.ID, State: "up"}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateRoute(ctx, app.ID, &controller.Route{Type: "http", Service: "doomed-web", Domain: "doomed.example.com"}); err != nil {
		t.Fatal(err)
	}
	own, err := c.ProvisionResource(ctx, "pg", &controller.ResourceRequest{Apps: []string{app.ID}})
	if err != nil {
		t.Fatal(err)
	}
	shared, err := c.ProvisionResource(ctx, "pg", &controller.ResourceRequest{Apps: []string{app.ID, keeper.ID}})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := c.StreamEvents(ctx, controller.EventFilter{AppID: app.ID})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := c.DeleteApp(ctx, app.Name); err != nil {
		t.Fatal(err)
	}
	wantCode(t, second(c.App(ctx, app.ID)), httpjson.CodeNotFound, "")
	if f, _ := c.AllFormations(ctx); len(f) != 0 {
		t.Fatalf("%d formations left", len(f))
	}
	if r, _ := c.Routes(ctx); len(r) != 0 {
		t.Fatalf("%d routes left", len(r))
	}
	wantCode(t, second(c.Resource(ctx, p.ID, own.ID)), httpjson.CodeNotFound, "")
	kept, err := c.Resource(ctx, p.ID, shared.ID)
	if err != nil || len(kept.Apps) != 1 || kept.Apps[0] != keeper.ID {
		t.Fatalf("shared resource = %+v, %v; want kept for keeper only", kept, err)
	}
	// The provider hears of the resource that went, not of the shared one.
	if got := deletes.list(); len(got) != 1 || got[0] != "/"+own.ExternalID {
		t.Fatalf("provider DELETEs = %v, want [/%s]", got, own.ExternalID)
	}
	if _, err := c.DeleteApp(ctx, keeper.Name); err != nil {
		t.Fatal(err)
	}
	if got := deletes.list(); len(got) != 2 || got[1] != "/"+shared.ExternalID {
		t.Fatalf("provider DELETEs after the last user went = %v, want the shared one too", got)
	}
	wantCode(t, second(c.Release(ctx, rel.ID)), httpjson.CodeNotFound, "")
	var orphans int
	for _, table := range []string{"releases", "formations", "jobs", "routes", "deployments", "app_resources"} {
		var n int
		if err := h.store.Pool.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE app_id = $1", app.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		orphans += n
	}
	if orphans != 0 {
		t.Fatalf("%d rows of the deleted app left", orphans)
	}

	want := map[string]bool{"formation": false, "route": false, "resource": false, "app": false}
	for range want {
		e := nextEvent(t, stream)
		if e.Op != controller.OpDelete {
			t.Fatalf("event %s %s, want deletes", e.ObjectType, e.Op)
		}
		want[e.ObjectType] = true
	}
	for typ, seen := range want {
		if !seen {
			t.Errorf("no delete event for %s", typ)
		}
	}
}
