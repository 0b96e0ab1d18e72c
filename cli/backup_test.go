package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/appliance/postgres/backup"
	backuparchive "github.com/openflynn/flynn/appliance/postgres/backup/archive"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// cannedBackup is a small valid archive with one app database.
func cannedBackup(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := backuparchive.NewWriter(&buf, time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{backuparchive.RolesName: "-- roles\n", "databases/app_x.dump": "PGDMP…"} {
		if err := w.Add(name, int64(len(content)), strings.NewReader(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close([]backuparchive.Database{{Name: "app_x", Kind: backuparchive.KindApp, Owner: "app_x", Entry: "databases/app_x.dump"}}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeAppliance stands in for flynn-postgres-api's backup API: GET
// /backup serves an archive (cut short with an error trailer when
// failBackup is set); POST /restore checks the archive and leaves, as the
// old controller's database, a scratch database with one app in it on the
// controller's server.
type fakeAppliance struct {
	archive    []byte
	failBackup atomic.Bool
	restores   atomic.Int32
}

func newFakeAppliance(t *testing.T, h *harness) *fakeAppliance {
	t.Helper()
	f := &fakeAppliance{archive: cannedBackup(t)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Trailer", backup.ErrorTrailer)
		if f.failBackup.Load() {
			w.Write(f.archive[:len(f.archive)/2])
			w.Header().Set(backup.ErrorTrailer, "pg_dump app_x: boom")
			return
		}
		w.Write(f.archive)
	})
	mux.HandleFunc("POST /restore", func(w http.ResponseWriter, r *http.Request) {
		f.restores.Add(1)
		hdr, _, err := backuparchive.Read(r.Body, backuparchive.Discard)
		if err != nil {
			httpjson.WriteError(w, backup.APIError(err))
			return
		}
		url := pg.Server(t).NewDatabase(t)
		old, err := postgres.Open(r.Context(), url, postgres.Options{})
		if err != nil {
			t.Error(err)
			return
		}
		err = old.Apps.Create(r.Context(), &controller.App{Name: "restored-app"})
		name := old.Pool.Config().ConnConfig.Database
		old.Close()
		if err != nil {
			t.Error(err)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		enc.Encode(backup.Event{Progress: "restoring database app_x"})
		enc.Encode(backup.Event{Result: &backup.Result{CreatedAt: hdr.CreatedAt, Databases: []string{"app_x"}, Roles: []string{"app_x"}, ControllerDatabase: name}})
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	if err := h.api.CreateProvider(context.Background(), &controller.Provider{Name: "postgres", URL: hs.URL + "/databases"}); err != nil {
		t.Fatal(err)
	}
	return f
}

// sameArchive fails unless got is a whole archive with want's entries
// and databases (the controller writes the appliance's archive again).
func sameArchive(t *testing.T, got, want []byte) {
	t.Helper()
	_, wm, err := backuparchive.Read(bytes.NewReader(want), backuparchive.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, gm, err := backuparchive.Read(bytes.NewReader(got), backuparchive.Discard)
	if err != nil || !slices.Equal(gm.Entries, wm.Entries) || !slices.Equal(gm.Databases, wm.Databases) {
		t.Fatalf("the backup (%d bytes) holds %+v, %v; want the appliance's %+v", len(got), gm, err, wm)
	}
}

func TestClusterBackup(t *testing.T) {
	h := newHarness(t)
	f := newFakeAppliance(t, h)

	h.fails("needs the cluster key", "cluster", "backup", "-f", "backup.tar")
	h.env.ClusterKey = testKey

	res := h.run("cluster", "backup", "-f", "backup.tar")
	if res.code != 0 || !strings.Contains(res.stderr, "Backed up cluster test to "+filepath.Join(h.env.Dir, "backup.tar")+": ") ||
		!strings.Contains(res.stderr, "1 databases") {
		t.Fatalf("backup: %+v", res)
	}
	path := filepath.Join(h.env.Dir, "backup.tar")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sameArchive(t, got, f.archive)
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("backup.tar has mode %v, want 0600: it holds the cluster's secrets", st.Mode().Perm())
	}

	// To stdout, when it is no terminal.
	sameArchive(t, []byte(h.ok("cluster", "backup")), f.archive)

	// A backup the cluster fails to finish is reported, and no file is
	// left behind.
	f.failBackup.Store(true)
	h.fails("the cluster failed to make the backup: pg_dump app_x: boom", "cluster", "backup", "-f", "broken.tar")
	entries, _ := os.ReadDir(h.env.Dir)
	for _, e := range entries {
		if e.Name() != "backup.tar" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestClusterRestore(t *testing.T) {
	h := newHarness(t)
	f := newFakeAppliance(t, h)
	h.env.ClusterKey = testKey
	good := filepath.Join(h.env.Dir, "backup.tar")
	if err := os.WriteFile(good, f.archive, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(h.env.Dir, "half.tar")
	if err := os.WriteFile(bad, f.archive[:len(f.archive)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(h.env.Dir, "notes.txt")
	if err := os.WriteFile(foreign, []byte(strings.Repeat("not a backup\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}

	// Bad files never leave the machine.
	h.fails("half.tar: incomplete backup", "cluster", "restore", "--yes", "half.tar")
	h.fails("notes.txt: not a Flynn backup", "cluster", "restore", "--yes", "notes.txt")
	// A wrong answer to the prompt stops it.
	res := h.runInput("prod\n", "cluster", "restore", "backup.tar")
	if res.code != 1 || !strings.Contains(res.stderr, "Type the cluster's name to confirm") || !strings.Contains(res.stderr, `"prod" does not match "test"; nothing restored`) {
		t.Fatalf("wrong confirmation: %+v", res)
	}
	if n := f.restores.Load(); n != 0 {
		t.Fatalf("%d restores reached the appliance, want none", n)
	}

	res = h.runInput("test\n", "cluster", "restore", "backup.tar")
	if res.code != 0 {
		t.Fatalf("restore: %+v", res)
	}
	for _, want := range []string{"Restored the backup of 2026-12-01 19:00 UTC", "Apps (1): restored-app", "Databases (1): app_x"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("stdout %q lacks %q", res.stdout, want)
		}
	}
	if !strings.Contains(res.stderr, "restoring database app_x…\nimporting apps, releases, routes and keys…\n") {
		t.Errorf("progress on stderr: %q", res.stderr)
	}
	if _, err := h.api.App(context.Background(), "restored-app"); err != nil {
		t.Fatalf("the restored app: %v", err)
	}

	// The cluster has an app now: a second restore is refused.
	h.fails("this cluster has apps of its own (restored-app)", "cluster", "restore", "--yes", "backup.tar")
}

func TestClusterRestoreJSON(t *testing.T) {
	h := newHarness(t)
	f := newFakeAppliance(t, h)
	h.env.ClusterKey = testKey
	if err := os.WriteFile(filepath.Join(h.env.Dir, "b.tar"), f.archive, 0o600); err != nil {
		t.Fatal(err)
	}
	out := h.ok("cluster", "restore", "--yes", "--json", "b.tar")
	var rep controller.RestoreReport
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Apps) != 1 || rep.Apps[0] != "restored-app" || len(rep.Databases) != 1 {
		t.Fatalf("report %+v", rep)
	}
}

func TestByteSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 12_345_678: "12.3 MB", 5 << 30: "5.4 GB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}
