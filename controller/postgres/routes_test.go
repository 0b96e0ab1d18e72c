package postgres

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/openflynn/flynn/controller"
)

// TestRouteRequestLogSetting: a route's NoRequestLog is stored, read back
// by every read (Get, List), and changed by Update, which leaves the rest
// of the route alone and emits an update event carrying the new setting
// (the router learns it from that event).
func TestRouteRequestLogSetting(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	app := &controller.App{Name: "web"}
	if err := s.Apps.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	quiet := &controller.Route{AppID: app.ID, Type: controller.RouteTypeHTTP, Service: "web-web", Domain: "quiet.test", Sticky: true, NoRequestLog: true}
	loud := &controller.Route{AppID: app.ID, Type: controller.RouteTypeTCP, Service: "web-db", Port: 3100}
	for _, r := range []*controller.Route{quiet, loud} {
		if err := s.Routes.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if !quiet.NoRequestLog || loud.NoRequestLog {
		t.Fatalf("created: quiet %v, loud %v; want true, false", quiet.NoRequestLog, loud.NoRequestLog)
	}
	if got, err := s.Routes.Get(ctx, "web", quiet.ID); err != nil || !got.NoRequestLog {
		t.Fatalf("Get = %+v, %v; want NoRequestLog", got, err)
	}
	list, _, err := s.Routes.List(ctx, app.ID, Page{})
	if err != nil || len(list) != 2 || !list[0].NoRequestLog || list[1].NoRequestLog {
		t.Fatalf("List = %v, %v; want quiet then loud", list, err)
	}

	yes, no := true, false
	tests := []struct {
		name string
		id   string
		u    controller.RouteUpdate
		want bool
	}{
		{"turn it on", quiet.ID, controller.RouteUpdate{NoRequestLog: &no}, false},
		{"nothing to change", quiet.ID, controller.RouteUpdate{}, false},
		{"turn it off", quiet.ID, controller.RouteUpdate{NoRequestLog: &yes}, true},
		{"a tcp route", loud.ID, controller.RouteUpdate{NoRequestLog: &yes}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := s.Events.LastID(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Routes.Update(ctx, app.Name, tt.id, tt.u)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tt.id || got.NoRequestLog != tt.want {
				t.Fatalf("Update = %+v, want %s with NoRequestLog %v", got, tt.id, tt.want)
			}
			if stored, err := s.Routes.Get(ctx, app.ID, tt.id); err != nil || stored.NoRequestLog != tt.want {
				t.Fatalf("Get after Update = %+v, %v; want NoRequestLog %v", stored, err, tt.want)
			}
			events, err := s.Events.List(ctx, EventQuery{After: before, ObjectTypes: []string{controller.ObjectTypeRoute}})
			if err != nil || len(events) != 1 || events[0].Op != controller.OpUpdate || events[0].ObjectID != tt.id {
				t.Fatalf("events = %v, %v; want one update of %s", events, err, tt.id)
			}
			var inEvent controller.Route
			if err := json.Unmarshal(events[0].Data, &inEvent); err != nil || inEvent.NoRequestLog != tt.want {
				t.Fatalf("event route = %s, %v; want no_request_log %v", events[0].Data, err, tt.want)
			}
		})
	}
	if got, err := s.Routes.Get(ctx, app.ID, quiet.ID); err != nil || got.Domain != "quiet.test" || !got.Sticky || got.Service != "web-web" {
		t.Fatalf("after updates: %+v, %v; want the rest of the route unchanged", got, err)
	}

	other := &controller.App{Name: "other"}
	if err := s.Apps.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, app, id string }{
		{"another app's route", other.ID, quiet.ID},
		{"no such route", app.ID, "7f9c24e5-0000-4000-8000-000000000000"},
		{"not an id", app.ID, "quiet"},
		{"no such app", "nope", quiet.ID},
	} {
		if _, err := s.Routes.Update(ctx, tt.app, tt.id, controller.RouteUpdate{NoRequestLog: &no}); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: Update = %v, want ErrNotFound", tt.name, err)
		}
	}
}

// TestAppCreatedWithRoutes: routes given to Apps.Create are made in the
// app's transaction: with it, or, when one cannot be made, neither.
func TestAppCreatedWithRoutes(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	app := &controller.App{Name: "web"}
	route := &controller.Route{Type: controller.RouteTypeHTTP, Service: "web-web", Domain: "web.apps.test"}
	if err := s.Apps.Create(ctx, app, route); err != nil {
		t.Fatal(err)
	}
	if route.ID == "" || route.AppID != app.ID || route.Path != "/" {
		t.Fatalf("route = %+v, want it filled in as the app's", route)
	}
	clash := &controller.App{Name: "clash"}
	err := s.Apps.Create(ctx, clash, &controller.Route{Type: controller.RouteTypeHTTP, Service: "clash-web", Domain: "web.apps.test"})
	var storeErr *Error
	if !errors.Is(err, ErrExists) || !errors.As(err, &storeErr) || storeErr.Field != "domain" {
		t.Fatalf("a route whose domain is taken: %v; want ErrExists on domain", err)
	}
	if _, err := s.Apps.Get(ctx, "clash"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the app whose route failed: %v; want it not created", err)
	}
	if list, _, err := s.Routes.List(ctx, "", Page{}); err != nil || len(list) != 1 {
		t.Fatalf("routes = %v, %v; want only web's", list, err)
	}
	events, err := s.Events.List(ctx, EventQuery{ObjectTypes: []string{controller.ObjectTypeApp, controller.ObjectTypeRoute}})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].ObjectType != controller.ObjectTypeApp || events[1].ObjectID != route.ID {
		t.Fatalf("events = %+v, want web's app then its route", events)
	}
}
