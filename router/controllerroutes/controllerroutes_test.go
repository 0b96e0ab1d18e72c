package controllerroutes

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/pgtest"
	"github.com/openflynn/flynn/pkg/sse"
	"github.com/openflynn/flynn/router"
)

// One Postgres server for the package; every test gets its own database.
var shared pgtest.Shared

func TestMain(m *testing.M) { goleak.VerifyTestMain(shared.Main(m)) }

func testLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// nextEvent returns the next route event, failing the test if none comes.
func nextEvent(t *testing.T, events <-chan router.RouteEvent) router.RouteEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("route event stream closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no route event within 10s")
	}
	return router.RouteEvent{}
}

// stopWatch ends a watch and waits until its channel closes, which is once
// the client's stream has stopped.
func stopWatch(cancel context.CancelFunc, events <-chan router.RouteEvent) {
	cancel()
	for range events {
	}
}

func routeEvent(id int64, op string, r *controller.Route) *controller.Event {
	data, _ := json.Marshal(r)
	return &controller.Event{ID: id, ObjectType: controller.ObjectTypeRoute, ObjectID: r.ID, Op: op, Data: data}
}

// TestEventTranslation streams hand-made events, including ones a real
// controller does not send (updates, repeats, other object types, broken
// data), and checks which become RouteEvents and how.
func TestEventTranslation(t *testing.T) {
	r1 := &controller.Route{ID: "r1", Type: controller.RouteTypeHTTP, Service: "web", Domain: "a.test"}
	r1sticky := &controller.Route{ID: "r1", Type: controller.RouteTypeHTTP, Service: "web", Domain: "a.test", Sticky: true}
	r2 := &controller.Route{ID: "r2", Type: controller.RouteTypeTCP, Service: "db", Port: 5432}
	tlsFull := &controller.Route{ID: "r3", AppID: "app1", Type: controller.RouteTypeHTTP, Service: "web", Domain: "tls.test",
		Certificate: &controller.Certificate{Cert: "CERT", Key: "KEY"}}
	tlsEvent := &controller.Route{ID: "r3", AppID: "app1", Type: controller.RouteTypeHTTP, Service: "web", Domain: "tls.test",
		Certificate: &controller.Certificate{Cert: "CERT"}}
	goneEvent := &controller.Route{ID: "r4", AppID: "app1", Type: controller.RouteTypeHTTP, Service: "web", Domain: "gone.test",
		Certificate: &controller.Certificate{Cert: "CERT"}}
	tests := []struct {
		name string
		ev   *controller.Event
		want *router.RouteEvent // nil: dropped
	}{
		{"create", routeEvent(1, controller.OpCreate, r1), &router.RouteEvent{ID: 1, Op: controller.OpCreate, Route: r1}},
		{"update", routeEvent(2, controller.OpUpdate, r1sticky), &router.RouteEvent{ID: 2, Op: controller.OpUpdate, Route: r1sticky}},
		{"other object type", &controller.Event{ID: 3, ObjectType: controller.ObjectTypeApp, ObjectID: "app", Op: controller.OpCreate, Data: json.RawMessage(`{"id":"app"}`)}, nil},
		{"undecodable route", &controller.Event{ID: 4, ObjectType: controller.ObjectTypeRoute, ObjectID: "r9", Op: controller.OpCreate, Data: json.RawMessage(`"not a route"`)}, nil},
		{"repeated id", routeEvent(2, controller.OpDelete, r1), nil},
		{"delete without data", &controller.Event{ID: 6, ObjectType: controller.ObjectTypeRoute, ObjectID: "r1", Op: controller.OpDelete, Data: json.RawMessage(`null`)}, &router.RouteEvent{ID: 6, Op: controller.OpDelete, Route: &controller.Route{ID: "r1"}}},
		{"create after the rest", routeEvent(7, controller.OpCreate, r2), &router.RouteEvent{ID: 7, Op: controller.OpCreate, Route: r2}},
		// Events carry no private keys: the route is read for its key.
		{"create with a certificate", routeEvent(8, controller.OpCreate, tlsEvent), &router.RouteEvent{ID: 8, Op: controller.OpCreate, Route: tlsFull}},
		{"create of a route deleted since", routeEvent(9, controller.OpCreate, goneEvent), nil},
		{"delete with a certificate", routeEvent(10, controller.OpDelete, tlsEvent), &router.RouteEvent{ID: 10, Op: controller.OpDelete, Route: tlsEvent}},
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/apps/app1/routes/"+tlsFull.ID {
			httpjson.Write(w, http.StatusOK, tlsFull)
			return
		}
		if r.URL.Path == "/apps/app1/routes/"+goneEvent.ID {
			httpjson.WriteError(w, httpjson.Errorf(httpjson.CodeNotFound, "route not found"))
			return
		}
		if r.URL.Path != "/events" || r.URL.Query().Get("object_types") != controller.ObjectTypeRoute {
			http.Error(w, "want GET /events?object_types=route", http.StatusBadRequest)
			return
		}
		w.Header().Set(controller.StreamStartHeader, "0")
		sw, err := sse.NewWriter(w)
		if err != nil {
			return
		}
		for _, tt := range tests {
			data, _ := json.Marshal(tt.ev)
			if err := sw.Send(sse.Event{ID: strconv.FormatInt(tt.ev.ID, 10), Name: tt.ev.ObjectType, Data: data}); err != nil {
				return
			}
		}
		<-r.Context().Done()
	}))
	defer srv.Close()
	defer srv.CloseClientConnections()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := New(client.NewWithHTTPClient(srv.URL, "", srv.Client()), testLogger()).WatchRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stopWatch(cancel, events)
	for _, tt := range tests {
		if tt.want == nil {
			continue
		}
		got := nextEvent(t, events)
		if !reflect.DeepEqual(got, *tt.want) {
			t.Errorf("%s: got %+v (route %+v), want %+v (route %+v)", tt.name, got, got.Route, *tt.want, tt.want.Route)
		}
	}
}

// TestWatchEndsWhenAKeyCannotBeRead: a route whose key the controller
// cannot give now ends the watch, so that the router starts over rather
// than serve the route without its certificate.
func TestWatchEndsWhenAKeyCannotBeRead(t *testing.T) {
	ev := routeEvent(1, controller.OpCreate, &controller.Route{ID: "r1", AppID: "app1", Type: controller.RouteTypeHTTP, Service: "web", Domain: "tls.test",
		Certificate: &controller.Certificate{Cert: "CERT"}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/events" {
			httpjson.WriteError(w, httpjson.Errorf(httpjson.CodeServiceUnavailable, "database down"))
			return
		}
		w.Header().Set(controller.StreamStartHeader, "0")
		sw, err := sse.NewWriter(w)
		if err != nil {
			return
		}
		data, _ := json.Marshal(ev)
		if err := sw.Send(sse.Event{ID: "1", Name: ev.ObjectType, Data: data}); err != nil {
			return
		}
		<-r.Context().Done()
	}))
	defer srv.Close()
	defer srv.CloseClientConnections()

	events, err := New(client.NewWithHTTPClient(srv.URL, "", srv.Client()), testLogger()).WatchRoutes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got, ok := <-events:
		if ok {
			t.Fatalf("got %+v (route %+v), want the watch to end", got, got.Route)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end within 10s")
	}
}
