package server

import (
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
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
