package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/poll"
)

func eventQuery(appID string, types ...string) postgres.EventQuery {
	return postgres.EventQuery{AppID: appID, ObjectTypes: types, Limit: postgres.MaxPageSize}
}

// nextEvent waits for an event with a deadline.
func nextEvent(t *testing.T, ch <-chan *controller.Event) *controller.Event {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("event stream closed")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return nil
}

func TestEventsOrderAndResume(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	app := h.app(t, "events")
	other := h.app(t, "quiet")
	rel := h.release(t, app, nil)
	h.release(t, other, nil)
	if err := h.client.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: map[string]int{"web": 1}}); err != nil {
		t.Fatal(err)
	}

	stream, err := h.client.StreamEvents(ctx, controller.EventFilter{AppID: app.Name, Since: controller.SinceBeginning})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{controller.ObjectTypeApp, controller.ObjectTypeRelease, controller.ObjectTypeFormation}
	var got []*controller.Event
	for range want {
		got = append(got, nextEvent(t, stream))
	}
	for i, e := range got {
		if e.ObjectType != want[i] || e.AppID != app.ID {
			t.Fatalf("event %d = %s of app %s, want %s of %s", i, e.ObjectType, e.AppID, want[i], app.ID)
		}
		if i > 0 && e.ID <= got[i-1].ID {
			t.Fatalf("event ids not increasing: %d after %d", e.ID, got[i-1].ID)
		}
	}
	// Live events follow, in order.
	route := &controller.Route{Type: "http", Service: "events-web", Domain: "events.example.com"}
	if err := h.client.CreateRoute(ctx, app.ID, route); err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, stream); e.ObjectType != controller.ObjectTypeRoute || e.ObjectID != route.ID || e.Op != controller.OpCreate {
		t.Fatalf("live event = %+v, want the route's create", e)
	}

	// Resume after the release event: the formation and route events again,
	// nothing of the other app; filter by object type.
	resumed, err := h.client.StreamEvents(ctx, controller.EventFilter{AppID: app.ID, Since: got[1].ID})
	if err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, resumed); e.ID != got[2].ID {
		t.Fatalf("resumed at %d, want %d", e.ID, got[2].ID)
	}
	if e := nextEvent(t, resumed); e.ObjectType != controller.ObjectTypeRoute {
		t.Fatalf("resumed second = %s, want route", e.ObjectType)
	}
	onlyReleases, err := h.client.StreamEvents(ctx, controller.EventFilter{ObjectTypes: []string{controller.ObjectTypeRelease}, Since: controller.SinceBeginning})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if e := nextEvent(t, onlyReleases); e.ObjectType != controller.ObjectTypeRelease {
			t.Fatalf("filtered stream sent %s", e.ObjectType)
		}
	}
}

// TestRouteChangesReachRouterQuickly follows the router's way: stream route
// events from now, then list; a change must arrive well within 1 s.
func TestRouteChangesReachRouterQuickly(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	app := h.app(t, "fast")
	stream, err := h.client.StreamEvents(ctx, controller.EventFilter{ObjectTypes: []string{controller.ObjectTypeRoute}})
	if err != nil {
		t.Fatal(err)
	}
	if routes, err := h.client.Routes(ctx); err != nil || len(routes) != 0 {
		t.Fatalf("Routes = %v, %v", routes, err)
	}
	for i := 0; i < 5; i++ {
		route := &controller.Route{Type: "tcp", Service: "fast-db", Port: 3600 + i}
		start := time.Now()
		if err := h.client.CreateRoute(ctx, app.ID, route); err != nil {
			t.Fatal(err)
		}
		e := nextEvent(t, stream)
		if lag := time.Since(start); lag > time.Second {
			t.Fatalf("route event after %v, want < 1s", lag)
		}
		if e.ObjectID != route.ID {
			t.Fatalf("event for %s, want %s", e.ObjectID, route.ID)
		}
	}
}

// TestEventStreamReconnects restarts the listener's view by closing the
// client's connection: the stream resumes without loss or repeats.
func TestEventStreamReconnects(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	stream, err := h.client.StreamEvents(ctx, controller.EventFilter{ObjectTypes: []string{controller.ObjectTypeApp}})
	if err != nil {
		t.Fatal(err)
	}
	first := h.app(t, "one")
	if e := nextEvent(t, stream); e.ObjectID != first.ID {
		t.Fatalf("event for %s, want %s", e.ObjectID, first.ID)
	}
	// Drop every open connection, as a controller restart would.
	h.serverCloseClientConns()
	// The store writes the same events as the API (and an HTTP call could
	// hit the connection that was just dropped).
	second := &controller.App{Name: "two"}
	if err := h.store.Apps.Create(ctx, second); err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, stream); e.ObjectID != second.ID {
		t.Fatalf("after reconnect: event for %s, want %s", e.ObjectID, second.ID)
	}
}

// eventRowsWith returns the event rows whose data holds s anywhere.
func eventRowsWith(t *testing.T, h *harness, s string) []string {
	t.Helper()
	rows, err := h.store.Pool.Query(t.Context(), `SELECT object_type || ' ' || op || ': ' || data::text FROM events WHERE strpos(data::text, $1) > 0`, s)
	if err != nil {
		t.Fatal(err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestEventsKeepNoSecrets: `flynn env unset` must erase a secret from the
// controller, so the event log never holds env values, nor a route's
// private key; followers read those from the objects themselves.
func TestEventsKeepNoSecrets(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	app := h.app(t, "secretive")
	const secret = "x-4f1c9a7e-secret-value"
	set := controller.ReleasePatch{Env: &controller.EnvPatch{Set: map[string]string{"SECRET": secret, "PLAIN": "1"}}}
	if _, err := h.client.PatchRelease(ctx, app.ID, set); err != nil {
		t.Fatal(err)
	}
	unset := controller.ReleasePatch{Env: &controller.EnvPatch{Unset: []string{"SECRET"}}}
	patched, err := h.client.PatchRelease(ctx, app.ID, unset)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := patched.Release.Env["SECRET"]; ok {
		t.Fatalf("env after unset = %v", patched.Release.Env)
	}
	cert := selfSignedCert(t, "secretive.example.com")
	route := &controller.Route{Type: controller.RouteTypeHTTP, Service: "secretive-web", Domain: "secretive.example.com", Certificate: cert}
	if err := h.client.CreateRoute(ctx, app.ID, route); err != nil {
		t.Fatal(err)
	}
	if err := h.client.DeleteRoute(ctx, app.ID, route.ID); err != nil {
		t.Fatal(err)
	}

	// The private key's base64 body, without its PEM armour.
	keyBody := strings.Split(strings.TrimSpace(cert.Key), "\n")[1]
	for what, s := range map[string]string{"the unset secret": secret, "the route's private key": keyBody} {
		if found := eventRowsWith(t, h, s); len(found) > 0 {
			t.Errorf("event rows hold %s:\n%s", what, strings.Join(found, "\n"))
		}
	}

	// What followers get: env names, and the certificate without its key.
	events, err := h.client.StreamEvents(ctx, controller.EventFilter{AppID: app.ID, ObjectTypes: []string{controller.ObjectTypeRelease, controller.ObjectTypeRoute}, Since: controller.SinceBeginning})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"release", "release", "route create", "route delete"} {
		e := nextEvent(t, events)
		switch e.ObjectType {
		case controller.ObjectTypeRelease:
			var rel controller.Release
			if err := json.Unmarshal(e.Data, &rel); err != nil {
				t.Fatal(err)
			}
			if rel.Env["PLAIN"] != controller.RedactedValue {
				t.Errorf("release event env = %v; want every name with %q", rel.Env, controller.RedactedValue)
			}
		case controller.ObjectTypeRoute:
			var rt controller.Route
			if err := json.Unmarshal(e.Data, &rt); err != nil {
				t.Fatal(err)
			}
			if rt.Certificate == nil || rt.Certificate.Cert != cert.Cert || rt.Certificate.Key != "" {
				t.Errorf("route %s event certificate = %+v; want the certificate without its key", e.Op, rt.Certificate)
			}
		default:
			t.Fatalf("event %s %s, want %s", e.ObjectType, e.Op, want)
		}
	}
}

// TestEventRetention runs a controller that keeps events for an hour: the
// cleanup deletes what is older, a stream resumed across what it deleted
// is refused, and one resumed after it, or started afresh, goes on.
func TestEventRetention(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	old := h.app(t, "old")
	h.release(t, old, map[string]string{"A": "1"})
	stale, err := h.store.Events.LastID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Pool.Exec(ctx, `UPDATE events SET created_at = now() - interval '2 hours' WHERE id <= $1`, stale); err != nil {
		t.Fatal(err)
	}
	recent := h.app(t, "recent")

	srv, err := New(h.store, Options{AuthKey: testKey, Logger: slog.New(slog.DiscardHandler), EventRetention: time.Hour, EventPruneInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	// After t.Context ends, which ends the streams; before the harness's
	// store closes.
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	c := client.New(hs.URL, testKey)
	poll.UntilNil(t, 10*time.Second, "old events deleted", func() error {
		var n int
		if err := h.store.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE id <= $1`, stale).Scan(&n); err != nil || n > 0 {
			return fmt.Errorf("%d old events left (%v)", n, err)
		}
		return nil
	})

	// Resuming before the deleted events would skip them: refused.
	_, err = c.StreamEvents(ctx, controller.EventFilter{Since: 1})
	wantCode(t, err, httpjson.CodePreconditionFailed, "since")
	// The deleted events were not the recent app's: its stream goes on.
	resumed, err := c.StreamEvents(ctx, controller.EventFilter{AppID: recent.ID, Since: 1})
	if err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, resumed); e.ObjectID != recent.ID {
		t.Fatalf("resumed stream sent %s %s, want the recent app's create", e.ObjectType, e.ObjectID)
	}
	// From the beginning is from what the log still holds.
	all, err := c.StreamEvents(ctx, controller.EventFilter{Since: controller.SinceBeginning})
	if err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, all); e.ID <= stale || e.ObjectID != recent.ID {
		t.Fatalf("first event = %d %s, want the recent app's, after %d", e.ID, e.ObjectID, stale)
	}
	// From now: new events arrive.
	live, err := c.StreamEvents(ctx, controller.EventFilter{ObjectTypes: []string{controller.ObjectTypeApp}})
	if err != nil {
		t.Fatal(err)
	}
	newer := h.app(t, "newer")
	if e := nextEvent(t, live); e.ObjectID != newer.ID {
		t.Fatalf("live event for %s, want %s", e.ObjectID, newer.ID)
	}
}
