package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/migrate"
)

// newStore returns a store over a fresh, migrated database.
func newStore(t *testing.T) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	store, err := Open(ctx, shared.Server(t).NewDatabase(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	return store
}

func TestRedact(t *testing.T) {
	tests := []struct {
		name       string
		objectType string
		data       string
		want       string
	}{
		{
			name:       "release",
			objectType: controller.ObjectTypeRelease,
			data:       `{"id":"r1","env":{"SECRET":"x","PORT":"5000"},"processes":{"web":{"cmd":["run"],"env":{"TOKEN":"y"}},"worker":{"cmd":["work"]}},"meta":{"git":"abc"}}`,
			want:       `{"env":{"PORT":"(redacted)","SECRET":"(redacted)"},"id":"r1","meta":{"git":"abc"},"processes":{"web":{"cmd":["run"],"env":{"TOKEN":"(redacted)"}},"worker":{"cmd":["work"]}}}`,
		},
		{
			name:       "release without env",
			objectType: controller.ObjectTypeRelease,
			data:       `{"id":"r2","artifact":"a"}`,
			want:       `{"artifact":"a","id":"r2"}`,
		},
		{
			name:       "resource",
			objectType: controller.ObjectTypeResource,
			data:       `{"id":"res","env":{"DATABASE_URL":"postgres://u:pw@db/x"}}`,
			want:       `{"env":{"DATABASE_URL":"(redacted)"},"id":"res"}`,
		},
		{
			name:       "build env",
			objectType: controller.ObjectTypeBuildEnv,
			data:       `{"env":{"GOPROXY":"https://u:pw@proxy.test"},"ca_certs":"PEM"}`,
			want:       `{"ca_certs":"PEM","env":{"GOPROXY":"(redacted)"}}`,
		},
		{
			name:       "route with a certificate",
			objectType: controller.ObjectTypeRoute,
			data:       `{"id":"rt","domain":"a.test","certificate":{"cert":"CERT","key":"KEY"}}`,
			want:       `{"certificate":{"cert":"CERT"},"domain":"a.test","id":"rt"}`,
		},
		{
			name:       "route without one",
			objectType: controller.ObjectTypeRoute,
			data:       `{"id":"rt","type":"tcp","port":3000}`,
			want:       `{"id":"rt","port":3000,"type":"tcp"}`,
		},
		{
			name:       "provider with a key",
			objectType: controller.ObjectTypeProvider,
			data:       `{"id":"p","name":"postgres","url":"http://:the-key@postgres-api.discoverd/databases"}`,
			want:       `{"id":"p","name":"postgres","url":"http://:(redacted)@postgres-api.discoverd/databases"}`,
		},
		{
			name:       "log drain with a token",
			objectType: controller.ObjectTypeLogDrain,
			data:       `{"id":"d","app":"a","url":"https://user:pw@logs.test/bulk/TOKEN?k=v"}`,
			want:       `{"app":"a","id":"d","url":"https://(redacted)@logs.test/(redacted)"}`,
		},
		{name: "a delete carrying nothing", objectType: controller.ObjectTypeRoute, data: `null`, want: `null`},
		{
			name:       "other objects are left alone",
			objectType: controller.ObjectTypeApp,
			data:       `{"id":"app","env":{"NOT":"an env"}}`,
			want:       `{"id":"app","env":{"NOT":"an env"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := redact(tt.objectType, []byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("redact() = %s\nwant       %s", got, tt.want)
			}
		})
	}
}

// secretsIn returns the event rows whose data holds any of secrets.
func secretsIn(t *testing.T, pool *pgxpool.Pool, secrets ...string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT object_type, data::text FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var typ, data string
		if err := rows.Scan(&typ, &data); err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(data, s) {
				found = append(found, typ+": "+data)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return found
}

// TestEventsKeepNoSecrets writes what holds secrets through the store and
// finds none of them in the log, while the state keeps them.
func TestEventsKeepNoSecrets(t *testing.T) {
	store := newStore(t)
	ctx := t.Context()
	app := &controller.App{Name: "leaky"}
	if err := store.Apps.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	art := &controller.Artifact{Type: "docker", URI: "img"}
	if err := store.Artifacts.Create(ctx, art); err != nil {
		t.Fatal(err)
	}
	rel := &controller.Release{AppID: app.ID, ArtifactID: art.ID, Env: map[string]string{"SECRET": "release-secret"},
		Processes: map[string]controller.ProcessType{"web": {Cmd: []string{"run"}, Env: map[string]string{"TOKEN": "process-secret"}}}}
	if err := store.Releases.Create(ctx, rel); err != nil {
		t.Fatal(err)
	}
	route := &controller.Route{AppID: app.ID, Type: controller.RouteTypeHTTP, Service: "leaky-web", Domain: "leaky.test",
		Certificate: &controller.Certificate{Cert: "PUBLIC-CERT", Key: "PRIVATE-KEY"}}
	if err := store.Routes.Create(ctx, route); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Routes.Delete(ctx, app.ID, route.ID); err != nil {
		t.Fatal(err)
	}

	if found := secretsIn(t, store.Pool, "release-secret", "process-secret", "PRIVATE-KEY"); len(found) > 0 {
		t.Errorf("events hold secrets:\n%s", strings.Join(found, "\n"))
	}
	events, err := store.Events.List(ctx, EventQuery{AppID: app.ID, ObjectTypes: []string{controller.ObjectTypeRelease, controller.ObjectTypeRoute}})
	if err != nil || len(events) != 3 {
		t.Fatalf("events = %d, %v; want a release and two route events", len(events), err)
	}
	var shown controller.Release
	if err := json.Unmarshal(events[0].Data, &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Env["SECRET"] != controller.RedactedValue || shown.Processes["web"].Env["TOKEN"] != controller.RedactedValue || shown.Processes["web"].Cmd[0] != "run" {
		t.Errorf("release event = %+v; want the env names with redacted values, the rest as it was", shown)
	}
	for _, e := range events[1:] {
		var rt controller.Route
		if err := json.Unmarshal(e.Data, &rt); err != nil {
			t.Fatal(err)
		}
		if rt.Certificate == nil || rt.Certificate.Cert != "PUBLIC-CERT" || rt.Certificate.Key != "" {
			t.Errorf("route %s event's certificate = %+v; want the certificate without its key", e.Op, rt.Certificate)
		}
	}
	// The state itself keeps them.
	if got, err := store.Releases.Get(ctx, rel.ID); err != nil || got.Env["SECRET"] != "release-secret" {
		t.Fatalf("release = %+v, %v; want its env whole", got, err)
	}
}

// TestMigrationRedactsOldEvents writes events as controllers did before
// migration 6 and checks that it takes the secrets out of them.
func TestMigrationRedactsOldEvents(t *testing.T) {
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, shared.Server(t).NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	all, err := migrate.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	before := fstest.MapFS{}
	for _, m := range all {
		if m.Version < 6 {
			before[m.Name] = &fstest.MapFile{Data: []byte(m.SQL)}
		}
	}
	if err := migrate.Run(ctx, pool, migrate.Options{Files: before, Table: "schema_migrations", Lock: migrationLock}); err != nil {
		t.Fatal(err)
	}
	old := []struct{ objectType, data string }{
		{controller.ObjectTypeRelease, `{"id":"r1","env":{"SECRET":"release-secret"},"processes":{"web":{"cmd":["run"],"env":{"TOKEN":"process-secret"}},"db":{"cmd":["pg"]}}}`},
		{controller.ObjectTypeRelease, `{"id":"r2","env":{},"processes":{}}`},
		{controller.ObjectTypeResource, `{"id":"res","env":{"DATABASE_URL":"postgres://u:resource-secret@db/x"}}`},
		{controller.ObjectTypeRoute, `{"id":"rt","certificate":{"cert":"PUBLIC-CERT","key":"PRIVATE-KEY"}}`},
		{controller.ObjectTypeRoute, `{"id":"rt2","type":"tcp"}`},
		{controller.ObjectTypeApp, `{"id":"app","name":"kept"}`},
	}
	for _, e := range old {
		if _, err := pool.Exec(ctx, `INSERT INTO events (object_type, object_id, op, data) VALUES ($1, 'x', 'create', $2)`, e.objectType, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if found := secretsIn(t, pool, "release-secret", "process-secret", "resource-secret", "PRIVATE-KEY"); len(found) > 0 {
		t.Errorf("events hold secrets after the migration:\n%s", strings.Join(found, "\n"))
	}
	// What is left reads as new events do.
	rows, err := pool.Query(ctx, `SELECT object_type, data FROM events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for i := 0; rows.Next(); i++ {
		var typ string
		var data []byte
		if err := rows.Scan(&typ, &data); err != nil {
			t.Fatal(err)
		}
		want, err := redact(typ, []byte(old[i].data))
		if err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(t, data, want) {
			t.Errorf("%s event after the migration = %s, want %s", typ, data, want)
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}

// backdate makes the events with ids up to id look written age ago.
func backdate(t *testing.T, store *Store, id int64, age time.Duration) {
	t.Helper()
	if _, err := store.Pool.Exec(t.Context(), `UPDATE events SET created_at = now() - $2::interval WHERE id <= $1`, id, age); err != nil {
		t.Fatal(err)
	}
}

// TestPrune deletes old events and checks that a stream can tell when
// resuming would skip what was deleted, and only then.
func TestPrune(t *testing.T) {
	store := newStore(t)
	ctx := t.Context()
	a, b := &controller.App{Name: "a"}, &controller.App{Name: "b"}
	for _, app := range []*controller.App{a, b} {
		if err := store.Apps.Create(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	firstA, err := store.Events.LastID(ctx) // b's create comes after
	if err != nil {
		t.Fatal(err)
	}
	firstA-- // a's create
	art := &controller.Artifact{Type: "docker", URI: "img"}
	if err := store.Artifacts.Create(ctx, art); err != nil {
		t.Fatal(err)
	}
	rel := &controller.Release{AppID: a.ID, ArtifactID: art.ID}
	if err := store.Releases.Create(ctx, rel); err != nil {
		t.Fatal(err)
	}
	oldest, err := store.Events.LastID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	backdate(t, store, oldest, 8*24*time.Hour)
	// A newer event stays.
	if err := store.Apps.Create(ctx, &controller.App{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	last, err := store.Events.LastID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	n, err := store.Events.Prune(ctx, time.Now().Add(-7*24*time.Hour))
	if err != nil || n != 4 {
		t.Fatalf("Prune = %d, %v; want the 4 old events deleted", n, err)
	}
	if n, err := store.Events.Prune(ctx, time.Now().Add(-7*24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("Prune again = %d, %v; want nothing more", n, err)
	}
	left, err := store.Events.List(ctx, EventQuery{})
	if err != nil || len(left) != 1 || left[0].ID != last {
		t.Fatalf("events left = %v, %v; want only the newest, %d", left, err, last)
	}
	if id, err := store.Events.LastID(ctx); err != nil || id != last {
		t.Fatalf("LastID = %d, %v; want %d", id, err, last)
	}

	tests := []struct {
		name    string
		q       EventQuery
		refused bool
	}{
		{name: "from the beginning: what is left", q: EventQuery{}},
		{name: "resumed before deleted events", q: EventQuery{After: firstA}, refused: true},
		{name: "resumed after them", q: EventQuery{After: oldest}},
		{name: "one app's, before its deleted release", q: EventQuery{After: firstA, AppID: a.ID}, refused: true},
		{name: "one app's, only its releases", q: EventQuery{After: firstA, AppID: a.ID, ObjectTypes: []string{controller.ObjectTypeRelease}}, refused: true},
		{name: "another app's deleted events do not matter", q: EventQuery{After: oldest - 1, AppID: b.ID}},
		{name: "nor deleted events of other types", q: EventQuery{After: firstA, ObjectTypes: []string{controller.ObjectTypeRoute}}},
		{name: "artifacts (of no app)", q: EventQuery{After: firstA, ObjectTypes: []string{controller.ObjectTypeArtifact}}, refused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := store.Events.List(ctx, tt.q)
			var e *Error
			switch {
			case tt.refused && (!errors.Is(err, ErrPrecondition) || !errors.As(err, &e) || e.Field != "since"):
				t.Fatalf("List(%+v) = %v; want a precondition error on since", tt.q, err)
			case !tt.refused && err != nil:
				t.Fatalf("List(%+v) = %v; want the events", tt.q, err)
			}
		})
	}
}
