package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
)

// oldCluster fills a store as a cluster's controller would have, with a
// system app, two people's apps and keys, and returns the ids to check.
type oldCluster struct {
	web, worker             *controller.App
	rel1, rel2              *controller.Release
	pgResource, redisRes    *controller.Resource
	httpRoute, tcpRoute     *controller.Route
	sysRoute                *controller.Route
	pendingDeploy, finished *controller.Deployment
	drain                   *controller.LogDrain
}

func fillOldCluster(t *testing.T, s *Store) *oldCluster {
	t.Helper()
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	o := &oldCluster{}
	sys := &controller.App{Name: "router", System: true}
	must(s.Apps.Create(ctx, sys))
	o.sysRoute = &controller.Route{AppID: sys.ID, Type: controller.RouteTypeTCP, Service: "router-api", Port: 80}
	must(s.Routes.Create(ctx, o.sysRoute))

	o.web = &controller.App{Name: "web", Meta: map[string]string{"owner": "ann"}}
	must(s.Apps.Create(ctx, o.web))
	o.worker = &controller.App{Name: "worker"}
	must(s.Apps.Create(ctx, o.worker))

	pg := &controller.Provider{Name: "postgres", URL: "http://:oldkey@postgres-api.discoverd/databases"}
	must(s.Providers.Create(ctx, pg))
	redis := &controller.Provider{Name: "redis", URL: "http://:redkey@redis-api.discoverd/clusters"}
	must(s.Providers.Create(ctx, redis))
	o.pgResource = &controller.Resource{ProviderID: pg.ID, ExternalID: "app_0123456789abcdef", Env: map[string]string{"DATABASE_URL": "postgres://app:pw@postgres.old.test:3432/app"}}
	_, err := s.Resources.Create(ctx, o.pgResource, []string{o.web.ID, sys.ID})
	must(err)
	o.redisRes = &controller.Resource{ProviderID: redis.ID, ExternalID: "r1", Env: map[string]string{"REDIS_URL": "redis://:x@redis.old.test:3000"}}
	_, err = s.Resources.Create(ctx, o.redisRes, []string{o.worker.ID})
	must(err)

	art := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "http://blobstore.discoverd/slugs/web.tgz"}
	must(s.Artifacts.Create(ctx, art))
	procs := map[string]controller.ProcessType{"web": {Cmd: []string{"start", "web"}, Ports: []controller.Port{{Proto: "tcp"}}, Service: "web-web"}}
	o.rel1 = &controller.Release{AppID: o.web.ID, ArtifactID: art.ID, Env: map[string]string{"DATABASE_URL": "postgres://app:pw@postgres.old.test:3432/app"}, Processes: procs}
	must(s.Releases.Create(ctx, o.rel1))
	_, o.finished, err = s.Deployments.Deploy(ctx, o.web.ID, o.rel1.ID)
	must(err)
	o.finished, err = s.Deployments.Update(ctx, o.web.ID, o.finished.ID, controller.DeploymentUpdate{Status: controller.DeploymentComplete})
	must(err)
	must(s.Formations.Put(ctx, &controller.Formation{AppID: o.web.ID, ReleaseID: o.rel1.ID, Processes: map[string]int{"web": 2}}))
	// A deploy that had not finished when the backup was made.
	o.rel2 = &controller.Release{AppID: o.web.ID, ArtifactID: art.ID, Env: map[string]string{"V": "2"}, Processes: procs}
	must(s.Releases.Create(ctx, o.rel2))
	_, o.pendingDeploy, err = s.Deployments.Deploy(ctx, o.web.ID, o.rel2.ID)
	must(err)

	o.httpRoute = &controller.Route{AppID: o.web.ID, Type: controller.RouteTypeHTTP, Service: "web-web", Domain: "web.old.test",
		Certificate: &controller.Certificate{Cert: "CERT", Key: "KEY"}, NoRequestLog: true}
	must(s.Routes.Create(ctx, o.httpRoute))
	o.tcpRoute = &controller.Route{AppID: o.web.ID, Type: controller.RouteTypeTCP, Service: "web-web", Port: 3005}
	must(s.Routes.Create(ctx, o.tcpRoute))

	o.drain = &controller.LogDrain{AppID: o.web.ID, URL: "syslog+tls://logs.old.test:6514"}
	must(s.LogDrains.Create(ctx, o.drain))
	must(s.Keys.Create(ctx, &controller.Key{Key: "ssh-ed25519 AAAAshared", Fingerprint: "SHA256:shared", Comment: "both"}))
	must(s.Keys.Create(ctx, &controller.Key{Key: "ssh-ed25519 AAAAold", Fingerprint: "SHA256:old", Comment: "old only"}))
	for _, name := range []string{"admin", "ci"} {
		h := sha256.Sum256([]byte(name + "-secret"))
		must(s.APIKeys.Create(ctx, &controller.APIKey{Name: name}, h[:]))
	}
	return o
}

// databaseOf returns the name of the store's database.
func databaseOf(s *Store) string { return s.Pool.Config().ConnConfig.Database }

func databaseExists(t *testing.T, s *Store, name string) bool {
	t.Helper()
	var ok bool
	if err := s.Pool.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestImport(t *testing.T) {
	ctx := t.Context()
	old := newStore(t)
	o := fillOldCluster(t, old)
	oldDB := databaseOf(old)
	old.Close()

	s := newStore(t)
	// The new cluster's own platform: a system app of the same name, its
	// postgres provider, a key and an API key named as the old ones.
	sys := &controller.App{Name: "router", System: true}
	if err := s.Apps.Create(ctx, sys); err != nil {
		t.Fatal(err)
	}
	pg := &controller.Provider{Name: "postgres", URL: "http://:newkey@postgres-api.discoverd/databases"}
	if err := s.Providers.Create(ctx, pg); err != nil {
		t.Fatal(err)
	}
	if err := s.Keys.Create(ctx, &controller.Key{Key: "ssh-ed25519 AAAAshared", Fingerprint: "SHA256:shared"}); err != nil {
		t.Fatal(err)
	}
	newAdmin := sha256.Sum256([]byte("new-admin-secret"))
	if err := s.APIKeys.Create(ctx, &controller.APIKey{Name: "admin"}, newAdmin[:]); err != nil {
		t.Fatal(err)
	}
	before, err := s.Events.LastID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	imp, err := s.Import(ctx, oldDB, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(imp.Apps, []string{"web", "worker"}) || imp.Releases != 4 || imp.Artifacts != 1 || imp.Formations != 1 ||
		imp.Routes != 2 || imp.LogDrains != 1 || imp.Resources != 2 || imp.Providers != 1 || imp.Deployments != 3 || imp.Keys != 1 || imp.APIKeys != 1 {
		t.Fatalf("imported %+v", imp)
	}
	if len(imp.Skipped) != 2 || !strings.Contains(imp.Skipped[0], "provider redis") || strings.Contains(imp.Skipped[0], "redkey") ||
		!strings.Contains(imp.Skipped[1], `API key "admin"`) {
		t.Fatalf("skipped %q", imp.Skipped)
	}
	if databaseExists(t, s, oldDB) {
		t.Error("the imported database was not dropped")
	}

	// Everything kept its id, and the current release is the pending
	// deploy's, as it was.
	web, err := s.Apps.Get(ctx, "web")
	if err != nil || web.ID != o.web.ID || web.ReleaseID != o.rel2.ID || web.System || web.Meta["owner"] != "ann" {
		t.Fatalf("web = %+v, %v", web, err)
	}
	rel, err := s.Releases.Get(ctx, o.rel1.ID)
	if err != nil || rel.Version != o.rel1.Version || rel.Env["DATABASE_URL"] != o.rel1.Env["DATABASE_URL"] {
		t.Fatalf("release 1 = %+v, %v", rel, err)
	}
	f, err := s.Formations.Get(ctx, "web", o.rel1.ID)
	if err != nil || f.Processes["web"] != 2 {
		t.Fatalf("formation = %+v, %v", f, err)
	}
	rt, err := s.Routes.Get(ctx, "web", o.httpRoute.ID)
	if err != nil || rt.Certificate == nil || rt.Certificate.Key != "KEY" || !rt.NoRequestLog {
		t.Fatalf("route = %+v, %v", rt, err)
	}
	if _, err := s.Routes.Get(ctx, "web", o.tcpRoute.ID); err != nil {
		t.Fatal(err)
	}
	if drains, _, err := s.LogDrains.List(ctx, o.web.ID, Page{}); err != nil || len(drains) != 1 || drains[0].ID != o.drain.ID || drains[0].URL != o.drain.URL {
		t.Fatalf("log drains = %+v, %v; want the old cluster's", drains, err)
	}
	// The resource now belongs to this cluster's postgres provider, and to
	// web alone: the old system app's link stays behind.
	res, err := s.Resources.Get(ctx, pg.ID, o.pgResource.ID)
	if err != nil || !slices.Equal(res.Apps, []string{o.web.ID}) || res.ExternalID != o.pgResource.ExternalID {
		t.Fatalf("postgres resource = %+v, %v", res, err)
	}
	redis, err := s.Providers.Get(ctx, "redis")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resources.Get(ctx, redis.ID, o.redisRes.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deployments.Get(ctx, "web", o.pendingDeploy.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the unfinished deployment: %v, want it left out", err)
	}
	if d, err := s.Deployments.Get(ctx, "web", o.finished.ID); err != nil || d.Status != controller.DeploymentComplete {
		t.Fatalf("the finished deployment = %+v, %v", d, err)
	}
	if k, err := s.Keys.Get(ctx, "SHA256:old"); err != nil || k.Comment != "old only" {
		t.Fatalf("old key = %+v, %v", k, err)
	}
	ciHash := sha256.Sum256([]byte("ci-secret"))
	if k, err := s.APIKeys.GetByHash(ctx, ciHash[:]); err != nil || k.Name != "ci" {
		t.Fatalf("ci key = %+v, %v", k, err)
	}
	if k, err := s.APIKeys.GetByHash(ctx, newAdmin[:]); err != nil || k.Name != "admin" {
		t.Fatalf("this cluster's admin key = %+v, %v", k, err)
	}
	// The old system app's route did not come.
	routes, _, err := s.Routes.List(ctx, "", Page{})
	if err != nil || len(routes) != 2 {
		t.Fatalf("routes = %d, %v; want web's two", len(routes), err)
	}

	// Followers learn of it all through the event log: the app (with its
	// release) before its formation and routes.
	events, err := s.Events.List(ctx, EventQuery{After: before, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, e := range events {
		if e.Op != controller.OpCreate {
			t.Errorf("event %s %s", e.Op, e.ObjectType)
		}
		seen = append(seen, e.ObjectType)
		if e.ObjectType == controller.ObjectTypeApp && e.ObjectID == o.web.ID {
			var a controller.App
			if err := json.Unmarshal(e.Data, &a); err != nil || a.ReleaseID != o.rel2.ID {
				t.Errorf("web's create event = %s", e.Data)
			}
		}
	}
	// Four releases and three finished deployments: the two the old
	// cluster made by hand and one of config alone per app, from its
	// resource added before a release of its own.
	want := []string{"provider", "artifact", "app", "app", "release", "release", "release", "release", "formation", "route", "route", "log_drain", "resource", "resource", "deployment", "deployment", "deployment", "key", "api_key"}
	if !slices.Equal(seen, want) {
		t.Fatalf("events %v, want %v", seen, want)
	}
}

func TestImportRefusesAppsInTheWay(t *testing.T) {
	ctx := t.Context()
	old := newStore(t)
	fillOldCluster(t, old)
	oldDB := databaseOf(old)
	old.Close()

	s := newStore(t)
	if err := s.Apps.Create(ctx, &controller.App{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Import(ctx, oldDB, ImportOptions{})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "web") {
		t.Fatalf("got %v, want ErrExists naming web", err)
	}
	if _, err := s.Apps.Get(ctx, "worker"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("worker: %v; want nothing imported", err)
	}
	if !databaseExists(t, s, oldDB) {
		t.Fatal("the database was dropped after a failed import")
	}
}

func TestImportRefusesNewerSchema(t *testing.T) {
	ctx := t.Context()
	old := newStore(t)
	if _, err := old.Pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	oldDB := databaseOf(old)
	old.Close()
	s := newStore(t)
	_, err := s.Import(ctx, oldDB, ImportOptions{})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "migration 9999") {
		t.Fatalf("got %v, want ErrInvalid naming migration 9999", err)
	}
	_, err = s.Import(context.Background(), "no_such_database", ImportOptions{})
	if err == nil {
		t.Fatal("import of a missing database succeeded")
	}
}
