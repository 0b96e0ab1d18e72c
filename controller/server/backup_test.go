package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/appliance/postgres/backup"
	"github.com/openflynn/flynn/appliance/postgres/backup/archive"
	blobpg "github.com/openflynn/flynn/blobstore/pg"
	"github.com/openflynn/flynn/blobstore/signed"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/pgtest"
)

const applianceKey = "appliance-key"

// withKey lets through requests with the appliance's key, as
// flynn-postgres-api does.
func withKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pass, _ := r.BasicAuth(); pass != applianceKey {
			httpjson.WriteError(w, httpjson.Errorf(httpjson.CodeUnauthorized, "wrong key"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// addAppliance registers the provider "postgres" at an httptest server
// serving h behind the appliance key.
func addAppliance(t testing.TB, store *postgres.Store, h http.Handler, key string) {
	t.Helper()
	hs := httptest.NewServer(withKey(h))
	t.Cleanup(hs.Close)
	p := &controller.Provider{Name: "postgres", URL: "http://:" + key + "@" + hs.Listener.Addr().String() + "/databases"}
	if err := store.Providers.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

// request sends method path with key and body.
func request(t testing.TB, url, method, key string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// restoreEvents reads a restore's answer: its progress and its last
// event.
func restoreEvents(t testing.TB, resp *http.Response) ([]string, controller.RestoreEvent) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("restore: %v", httpjson.ReadError(resp))
	}
	var progress []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev controller.RestoreEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("restore answered %q: %v", sc.Text(), err)
		}
		if ev.Progress == "" {
			return progress, ev
		}
		progress = append(progress, ev.Progress)
	}
	t.Fatalf("restore ended without a report: %v", sc.Err())
	return nil, controller.RestoreEvent{}
}

func wantAPIError(t testing.TB, resp *http.Response, code httpjson.Code, msg string) {
	t.Helper()
	err := httpjson.ReadError(resp)
	if !httpjson.IsCode(err, code) || !strings.Contains(err.Error(), msg) {
		t.Fatalf("got %d %v, want %s mentioning %q", resp.StatusCode, err, code, msg)
	}
}

func TestBackupNeedsTheClusterKey(t *testing.T) {
	h := newHarness(t)
	k, err := h.client.CreateAPIKey(t.Context(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	wantAPIError(t, request(t, h.url+"/backup", http.MethodGet, k.Secret, nil), httpjson.CodeForbidden, "cluster key")
	wantAPIError(t, request(t, h.url+"/restore", http.MethodPost, k.Secret, strings.NewReader("x")), httpjson.CodeForbidden, "cluster key")
	wantAPIError(t, request(t, h.url+"/backup", http.MethodGet, "", nil), httpjson.CodeUnauthorized, "key")
	// No appliance to ask.
	wantAPIError(t, request(t, h.url+"/backup", http.MethodGet, testKey, nil), httpjson.CodeServiceUnavailable, `no "postgres" provider`)
}

// smallArchive is an archive as the appliance writes one: roles and a
// dump.
func smallArchive(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	aw, err := archive.NewWriter(&buf, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{archive.RolesName: "-- roles\n", "databases/app_1.dump": strings.Repeat("dump ", 1000)} {
		if err := aw.Add(name, int64(len(data)), strings.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := aw.Close([]archive.Database{{Name: "app_1", Kind: archive.KindApp, Owner: "app_1", Entry: "databases/app_1.dump"}}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBackupStreamsTheAppliancesArchive(t *testing.T) {
	h := newHarness(t)
	fail := false
	src := smallArchive(t)
	addAppliance(t, h.store, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", backup.ErrorTrailer)
		w.Header().Set("Content-Type", "application/x-tar")
		if fail {
			w.Write(src[:len(src)/2])
			w.Header().Set(backup.ErrorTrailer, "pg_dump app_1: out of disk")
			return
		}
		w.Write(src)
	}), applianceKey)
	resp := request(t, h.url+"/backup", http.MethodGet, testKey, nil)
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Trailer.Get(controller.BackupErrorTrailer) != "" {
		t.Fatalf("backup: %s %v, trailer %q", resp.Status, err, resp.Trailer.Get(controller.BackupErrorTrailer))
	}
	_, want, _ := archive.Read(bytes.NewReader(src), archive.Discard)
	_, got, err := archive.Read(bytes.NewReader(body), archive.Discard)
	if err != nil || !slices.Equal(got.Entries, want.Entries) || !slices.Equal(got.Databases, want.Databases) {
		t.Fatalf("the backup holds %+v (%v), want the appliance's %+v", got, err, want)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, "flynn-backup-") {
		t.Errorf("Content-Disposition %q", cd)
	}
	fail = true
	resp = request(t, h.url+"/backup", http.MethodGet, testKey, nil)
	body, _ = io.ReadAll(resp.Body)
	if got := resp.Trailer.Get(controller.BackupErrorTrailer); got != "pg_dump app_1: out of disk" {
		t.Fatalf("trailer %q", got)
	}
	if _, _, err := archive.Read(bytes.NewReader(body), archive.Discard); err == nil {
		t.Fatal("a failed backup reads as a whole archive")
	}
}

// fakeResources is a provider other than Postgres that serves the
// resource backup API, keeping each resource's data in memory.
type fakeResources struct {
	mu       sync.Mutex
	data     map[string]string            // by external id
	made     map[string]map[string]string // env PUT asked for, by external id
	failDump bool
}

func (f *fakeResources) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, action, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/clusters/"), "/")
	switch {
	case r.Method == http.MethodGet && action == "backup":
		d, ok := f.data[id]
		if !ok || f.failDump {
			http.Error(w, "no server "+id, http.StatusNotFound)
			return
		}
		io.WriteString(w, d)
	case r.Method == http.MethodPut && action == "":
		var body struct {
			Env map[string]string `json:"env"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.made[id] = body.Env
		io.WriteString(w, `{}`)
	case r.Method == http.MethodPost && action == "restore":
		if f.made[id] == nil {
			http.Error(w, "no server "+id, http.StatusNotFound)
			return
		}
		d, _ := io.ReadAll(r.Body)
		f.data[id] = string(d)
		io.WriteString(w, `{"keys": 1}`)
	default:
		http.Error(w, "no", http.StatusMethodNotAllowed)
	}
}

// addResources registers f as provider "redis".
func addResources(t testing.TB, store *postgres.Store, f *fakeResources) *controller.Provider {
	t.Helper()
	hs := httptest.NewServer(withKey(f))
	t.Cleanup(hs.Close)
	p := &controller.Provider{Name: "redis", URL: "http://:" + applianceKey + "@" + hs.Listener.Addr().String() + "/clusters"}
	if err := store.Providers.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBackupFailsWithoutAResourcesData: a provider that cannot give a
// resource's data fails the backup, saying which.
func TestBackupFailsWithoutAResourcesData(t *testing.T) {
	h := newHarness(t)
	src := smallArchive(t)
	addAppliance(t, h.store, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(src) }), applianceKey)
	f := &fakeResources{data: map[string]string{}, made: map[string]map[string]string{}, failDump: true}
	p := addResources(t, h.store, f)
	res := &controller.Resource{ProviderID: p.ID, ExternalID: "abc", Env: map[string]string{"REDIS_URL": "redis://x"}}
	if _, err := h.store.Resources.Create(t.Context(), res, nil); err != nil {
		t.Fatal(err)
	}
	resp := request(t, h.url+"/backup", http.MethodGet, testKey, nil)
	body, _ := io.ReadAll(resp.Body)
	if got := resp.Trailer.Get(controller.BackupErrorTrailer); !strings.Contains(got, res.ID) || !strings.Contains(got, "404") {
		t.Fatalf("trailer %q, want the resource and the provider's answer", got)
	}
	if _, _, err := archive.Read(bytes.NewReader(body), archive.Discard); err == nil {
		t.Fatal("a failed backup reads as a whole archive")
	}
}

func TestRestoreRefusals(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, h *harness)
		key    string
		status int
		body   string
		code   httpjson.Code
		msg    string
	}{
		{"apps of its own", func(t *testing.T, h *harness) { h.app(t, "mine") }, applianceKey, 0, "", httpjson.CodePreconditionFailed, "apps of its own (mine)"},
		{"not a backup", nil, applianceKey, http.StatusBadRequest, `{"code":"validation_error","message":"not a Flynn backup: the file is empty"}`, httpjson.CodeValidation, "not a Flynn backup"},
		{"in the way", nil, applianceKey, http.StatusConflict, `{"code":"conflict","message":"databases in the way: app_1"}`, httpjson.CodeConflict, "app_1"},
		{"wrong appliance key", nil, "other-key", 0, "", httpjson.CodeServiceUnavailable, "refused the postgres provider's key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			addAppliance(t, h.store, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}), tt.key)
			if tt.setup != nil {
				tt.setup(t, h)
			}
			wantAPIError(t, request(t, h.url+"/restore", http.MethodPost, testKey, strings.NewReader("")), tt.code, tt.msg)
		})
	}
}

// cluster is one cluster's Postgres server with the controller's and the
// blobstore's databases, its controller, and the appliance's backup API as
// flynn-postgres-api serves it.
type cluster struct {
	pg     *pgtest.Server
	store  *postgres.Store
	client *client.Client
	url    string
}

func newCluster(t *testing.T, blobstoreKey string) *cluster {
	t.Helper()
	ctx := t.Context()
	c := &cluster{pg: pgtest.New(t)}
	sqlExec(t, c.pg, "postgres", `CREATE DATABASE controller`, `CREATE DATABASE blobstore`)
	blobs, err := blobpg.Open(ctx, c.pg.URL("blobstore"), blobpg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer blobs.Close()
	if err := blobs.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if c.store, err = postgres.Open(ctx, c.pg.URL("controller"), postgres.Options{}); err != nil {
		t.Fatal(err)
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	addAppliance(t, c.store, backup.Handler(backup.Config{URL: c.pg.URL("postgres"), Logger: discard}), applianceKey)
	srv, err := New(c.store, Options{AuthKey: testKey, Logger: discard, BlobstoreKey: blobstoreKey})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
		c.store.Close()
	})
	c.url, c.client = hs.URL, client.New(hs.URL, testKey)
	return c
}

func sqlExec(t testing.TB, srv *pgtest.Server, db string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, srv.URL(db))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestBackupAndRestoreAClusterEndToEnd backs up a cluster with two apps,
// one with a database, and restores it onto a fresh one, through both
// controllers and the appliance's real backup API.
func TestBackupAndRestoreAClusterEndToEnd(t *testing.T) {
	ctx := t.Context()
	old, fresh := newCluster(t, "old-blob-key"), newCluster(t, "new-blob-key")

	// The old cluster: a system app (the new one has its own), two apps,
	// a database for one of them, its slug in the blobstore.
	if err := old.store.Apps.Create(ctx, &controller.App{Name: "router", System: true}); err != nil {
		t.Fatal(err)
	}
	if err := fresh.store.Apps.Create(ctx, &controller.App{Name: "router", System: true}); err != nil {
		t.Fatal(err)
	}
	sqlExec(t, old.pg, "postgres", `CREATE ROLE app_1 LOGIN PASSWORD 'pw'`, `CREATE DATABASE app_1 OWNER app_1`)
	sqlExec(t, old.pg, "app_1", `SET ROLE app_1`, `CREATE TABLE notes (body text)`, `INSERT INTO notes VALUES ('kept')`)
	blobs, err := blobpg.Open(ctx, old.pg.URL("blobstore"), blobpg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blobs.Put(ctx, "slugs/web.tgz", strings.NewReader("web's slug")); err != nil {
		t.Fatal(err)
	}
	blobs.Close()
	apps, images := map[string]*controller.App{}, map[string]*controller.Artifact{}
	for _, name := range []string{"web", "api"} {
		app := &controller.App{Name: name}
		if err := old.client.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
		apps[name] = app
		art := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "flynn/slugrunner:test"}
		if err := old.client.CreateArtifact(ctx, art); err != nil {
			t.Fatal(err)
		}
		// An image pushed to app api (flynn docker push): its archive at a
		// URL signed with the old cluster's key. The API makes such
		// artifacts only from an upload.
		imageURL, err := signed.URL("http://blobstore.example.test", "old-blob-key", http.MethodGet, "images/"+app.ID+".tar", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		image := &controller.Artifact{Type: controller.ArtifactTypeDockerArchive, URI: imageURL}
		if err := old.store.Artifacts.Create(ctx, image); err != nil {
			t.Fatal(err)
		}
		images[name] = image
		if err := old.client.CreateRelease(ctx, &controller.Release{AppID: app.ID, ArtifactID: image.ID,
			Processes: map[string]controller.ProcessType{"web": {Cmd: []string{"serve"}}}}); err != nil {
			t.Fatal(err)
		}
		// A pushed app's slug, at a URL signed with the old cluster's key.
		slugURL, err := signed.URL("http://blobstore.example.test", "old-blob-key", http.MethodGet, "apps/"+app.ID+"/slug.tgz", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		rel := &controller.Release{AppID: app.ID, ArtifactID: art.ID, Env: map[string]string{"SLUG_URL": slugURL, "PLAIN": "kept"},
			Processes: map[string]controller.ProcessType{"web": {Cmd: []string{"start"}}}}
		if err := old.client.CreateRelease(ctx, rel); err != nil {
			t.Fatal(err)
		}
		if err := old.client.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: map[string]int{"web": 3}}); err != nil {
			t.Fatal(err)
		}
		if err := old.client.CreateRoute(ctx, name, &controller.Route{Type: controller.RouteTypeHTTP, Service: name + "-web", Domain: name + ".example.test"}); err != nil {
			t.Fatal(err)
		}
	}
	pgProvider, err := old.store.Providers.Get(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.store.Resources.Create(ctx, &controller.Resource{ProviderID: pgProvider.ID, ExternalID: "app_1",
		Env: map[string]string{"DATABASE_URL": "postgres://app_1:pw@postgres.example.test:3432/app_1"}}, []string{"web"}); err != nil {
		t.Fatal(err)
	}

	// A Redis server of api's, at a provider other than Postgres.
	oldRedis := &fakeResources{data: map[string]string{"r1": "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"}, made: map[string]map[string]string{}}
	freshRedis := &fakeResources{data: map[string]string{}, made: map[string]map[string]string{}}
	redisEnv := map[string]string{"REDIS_URL": "redis://:pw@redis.example.test:3000", "REDIS_PASSWORD": "pw", "REDIS_PORT": "3000"}
	redisRes := &controller.Resource{ProviderID: addResources(t, old.store, oldRedis).ID, ExternalID: "r1", Env: redisEnv}
	if _, err := old.store.Resources.Create(ctx, redisRes, []string{"api"}); err != nil {
		t.Fatal(err)
	}
	addResources(t, fresh.store, freshRedis)

	resp := request(t, old.url+"/backup", http.MethodGet, testKey, nil)
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Trailer.Get(controller.BackupErrorTrailer) != "" {
		t.Fatalf("backup: %s, %v, trailer %q", resp.Status, err, resp.Trailer.Get(controller.BackupErrorTrailer))
	}
	if _, m, err := archive.Read(bytes.NewReader(data), archive.Discard); err != nil {
		t.Fatalf("the backup does not read back: %v", err)
	} else if _, ok := m.Entry(archive.ResourceEntry(redisRes.ID)); !ok {
		t.Fatalf("the backup has no entry of the Redis resource: %+v", m.Entries)
	}

	progress, last := restoreEvents(t, request(t, fresh.url+"/restore", http.MethodPost, testKey, bytes.NewReader(data)))
	if last.Error != "" || last.Report == nil {
		t.Fatalf("restore failed: %+v", last)
	}
	r := last.Report
	if !slices.Equal(r.Apps, []string{"web", "api"}) || !slices.Equal(r.Databases, []string{"app_1"}) || !slices.Equal(r.Roles, []string{"app_1"}) ||
		r.Formations != 2 || r.Routes != 2 || r.Resources != 2 || r.BlobsAdded != 1 || len(r.Notes) != 0 {
		t.Fatalf("report %+v", r)
	}
	if !slices.Contains(progress, "importing apps, releases, routes and keys") {
		t.Errorf("progress %q", progress)
	}

	// The fresh cluster serves the apps as the old one did, their slugs
	// at URLs its blobstore's key opens.
	for name, app := range apps {
		rels, err := fresh.client.AppReleases(ctx, name)
		if err != nil || len(rels) == 0 {
			t.Fatalf("releases of %s: %+v, %v", name, rels, err)
		}
		slugs := 0
		for _, rel := range rels {
			if rel.Env["SLUG_URL"] == "" {
				continue // a resource's release of an app with no current release
			}
			slugs++
			u, err := url.Parse(rel.Env["SLUG_URL"])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := signed.Verify("new-blob-key", http.MethodGet, "apps/"+app.ID+"/slug.tgz", u.RawQuery, time.Now()); err != nil || rel.Env["PLAIN"] != "kept" {
				t.Fatalf("%s's release %d on the fresh cluster: SLUG_URL %s (%v), PLAIN %q; want it signed with the fresh cluster's key", name, rel.Version, rel.Env["SLUG_URL"], err, rel.Env["PLAIN"])
			}
		}
		if slugs == 0 {
			t.Fatalf("no release of %s names its slug", name)
		}
		image, err := fresh.client.Artifact(ctx, images[name].ID)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(image.URI)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := signed.Verify("new-blob-key", http.MethodGet, "images/"+app.ID+".tar", u.RawQuery, time.Now()); err != nil {
			t.Fatalf("%s's image on the fresh cluster: %s (%v); want it signed with the fresh cluster's key", name, image.URI, err)
		}
		got, err := fresh.client.App(ctx, name)
		if err != nil || got.ID != app.ID {
			t.Fatalf("app %s = %+v, %v", name, got, err)
		}
		fs, err := fresh.client.Formations(ctx, name)
		if err != nil || len(fs) != 1 || fs[0].Processes["web"] != 3 {
			t.Fatalf("formations of %s = %+v, %v", name, fs, err)
		}
		routes, err := fresh.client.AppRoutes(ctx, name)
		if err != nil || len(routes) != 1 || routes[0].Domain != name+".example.test" {
			t.Fatalf("routes of %s = %+v, %v", name, routes, err)
		}
	}
	res, err := fresh.client.AppResources(ctx, "web")
	if err != nil || len(res) != 1 || res[0].ExternalID != "app_1" {
		t.Fatalf("web's resources = %+v, %v", res, err)
	}
	// The Redis server is made again with its env, and its data loaded.
	freshRedis.mu.Lock()
	made, loaded := freshRedis.made["r1"], freshRedis.data["r1"]
	freshRedis.mu.Unlock()
	if made["REDIS_PASSWORD"] != "pw" || made["REDIS_PORT"] != "3000" || loaded != oldRedis.data["r1"] {
		t.Fatalf("the Redis server on the fresh cluster: made with %v, loaded %q", made, loaded)
	}
	if !slices.Contains(progress, "bringing back resource "+redisRes.ID+" of provider redis") {
		t.Errorf("progress %q", progress)
	}

	var note string
	c, err := pgx.Connect(ctx, fresh.pg.URL("app_1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.QueryRow(ctx, `SELECT body FROM notes`).Scan(&note); err != nil || note != "kept" {
		t.Fatalf("app_1's data: %q, %v", note, err)
	}
	var scratch bool
	if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, backup.ControllerScratch).Scan(&scratch); err != nil || scratch {
		t.Fatalf("the scratch database is left: %v", err)
	}

	// A second restore finds apps in the way and changes nothing.
	wantAPIError(t, request(t, fresh.url+"/restore", http.MethodPost, testKey, bytes.NewReader(data)), httpjson.CodePreconditionFailed, "web, api")
}
