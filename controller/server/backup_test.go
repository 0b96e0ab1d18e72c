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
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/appliance/postgres/backup"
	"github.com/openflynn/flynn/appliance/postgres/backup/archive"
	blobpg "github.com/openflynn/flynn/blobstore/pg"
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

func TestBackupStreamsTheAppliancesArchive(t *testing.T) {
	h := newHarness(t)
	fail := false
	addAppliance(t, h.store, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", backup.ErrorTrailer)
		w.Header().Set("Content-Type", "application/x-tar")
		io.WriteString(w, "archive bytes")
		if fail {
			w.Header().Set(backup.ErrorTrailer, "pg_dump app_1: out of disk")
		}
	}), applianceKey)
	resp := request(t, h.url+"/backup", http.MethodGet, testKey, nil)
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != "archive bytes" || resp.Trailer.Get(controller.BackupErrorTrailer) != "" {
		t.Fatalf("backup: %s %q %v, trailer %q", resp.Status, body, err, resp.Trailer.Get(controller.BackupErrorTrailer))
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, "flynn-backup-") {
		t.Errorf("Content-Disposition %q", cd)
	}
	fail = true
	resp = request(t, h.url+"/backup", http.MethodGet, testKey, nil)
	io.Copy(io.Discard, resp.Body)
	if got := resp.Trailer.Get(controller.BackupErrorTrailer); got != "pg_dump app_1: out of disk" {
		t.Fatalf("trailer %q", got)
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

func newCluster(t *testing.T) *cluster {
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
	srv, err := New(c.store, Options{AuthKey: testKey, Logger: discard})
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
	old, fresh := newCluster(t), newCluster(t)

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
	apps := map[string]*controller.App{}
	for _, name := range []string{"web", "api"} {
		app := &controller.App{Name: name}
		if err := old.client.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
		apps[name] = app
		art := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "http://blobstore.discoverd/slugs/web.tgz"}
		if err := old.client.CreateArtifact(ctx, art); err != nil {
			t.Fatal(err)
		}
		rel := &controller.Release{AppID: app.ID, ArtifactID: art.ID, Processes: map[string]controller.ProcessType{"web": {Cmd: []string{"start"}}}}
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

	resp := request(t, old.url+"/backup", http.MethodGet, testKey, nil)
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Trailer.Get(controller.BackupErrorTrailer) != "" {
		t.Fatalf("backup: %s, %v, trailer %q", resp.Status, err, resp.Trailer.Get(controller.BackupErrorTrailer))
	}
	if _, _, err := archive.Read(bytes.NewReader(data), archive.Discard); err != nil {
		t.Fatalf("the backup does not read back: %v", err)
	}

	progress, last := restoreEvents(t, request(t, fresh.url+"/restore", http.MethodPost, testKey, bytes.NewReader(data)))
	if last.Error != "" || last.Report == nil {
		t.Fatalf("restore failed: %+v", last)
	}
	r := last.Report
	if !slices.Equal(r.Apps, []string{"web", "api"}) || !slices.Equal(r.Databases, []string{"app_1"}) || !slices.Equal(r.Roles, []string{"app_1"}) ||
		r.Formations != 2 || r.Routes != 2 || r.Resources != 1 || r.BlobsAdded != 1 {
		t.Fatalf("report %+v", r)
	}
	if !slices.Contains(progress, "importing apps, releases, routes and keys") {
		t.Errorf("progress %q", progress)
	}

	// The fresh cluster serves the apps as the old one did.
	for name, app := range apps {
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
