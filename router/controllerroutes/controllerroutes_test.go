package controllerroutes

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/sse"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeController serves GET /routes and a GET /events stream that sends the
// queued events after the requested id, then ends the stream after each
// batch when dropAfter is set.
type fakeController struct {
	mu        sync.Mutex
	routes    []*controller.Route
	events    []controller.Event
	sinces    []string
	newEvent  chan struct{}
	dropAfter bool
}

func (f *fakeController) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !authkey.Valid(r, "secret") {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	switch r.URL.Path {
	case "/routes":
		f.mu.Lock()
		defer f.mu.Unlock()
		json.NewEncoder(w).Encode(f.routes)
	case "/events":
		if r.URL.Query().Get("object_types") != "route" {
			http.Error(w, "want object_types=route", http.StatusBadRequest)
			return
		}
		since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
		f.mu.Lock()
		f.sinces = append(f.sinces, r.URL.Query().Get("since"))
		start := int64(len(f.events))
		f.mu.Unlock()
		if since == 0 {
			since = start
		}
		w.Header().Set(controller.StreamStartHeader, strconv.FormatInt(start, 10))
		sw, err := sse.NewWriter(w)
		if err != nil {
			return
		}
		for {
			f.mu.Lock()
			pending := append([]controller.Event(nil), f.events[min(since, int64(len(f.events))):]...)
			drop := f.dropAfter
			f.mu.Unlock()
			for _, e := range pending {
				data, _ := json.Marshal(e)
				sw.Send(sse.Event{ID: strconv.FormatInt(e.ID, 10), Name: e.ObjectType, Data: data})
				since = e.ID
			}
			if drop && len(pending) > 0 {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-f.newEvent:
			}
		}
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeController) emit(op string, r *controller.Route) {
	f.mu.Lock()
	data, _ := json.Marshal(r)
	f.events = append(f.events, controller.Event{ID: int64(len(f.events) + 1), ObjectType: "route", ObjectID: r.ID, Op: op, Data: data})
	f.mu.Unlock()
	for {
		select {
		case f.newEvent <- struct{}{}:
			continue
		default:
		}
		return
	}
}

func TestRoutesAndResumingStream(t *testing.T) {
	fc := &fakeController{
		routes:    []*controller.Route{{ID: "r1", Type: "http", Service: "web", Domain: "a.test", Sticky: true, Certificate: &controller.Certificate{Cert: "C", Key: "K"}}},
		newEvent:  make(chan struct{}),
		dropAfter: true,
	}
	srv := httptest.NewServer(fc)
	defer srv.Close()
	src := New(srv.URL, "secret", slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer src.http.CloseIdleConnections()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := src.WatchRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := src.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 || routes[0].ID != "r1" || !routes[0].Sticky || routes[0].Certificate.Cert != "C" {
		t.Fatalf("Routes = %+v", routes)
	}

	// Each batch ends the stream: the second event arrives only through a
	// reconnection that resumes after the first.
	next := func() string {
		t.Helper()
		select {
		case ev := <-events:
			if ev.Route.ID == "r2" && ev.Route.Port != 5432 {
				t.Errorf("event route = %+v, want port 5432", ev.Route)
			}
			return ev.Op + " " + ev.Route.ID + " " + strconv.FormatInt(ev.ID, 10)
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
			return ""
		}
	}
	fc.emit("create", &controller.Route{ID: "r2", Type: "tcp", Service: "db", Port: 5432})
	got := []string{next()}
	fc.emit("delete", &controller.Route{ID: "r1", Type: "http", Service: "web", Domain: "a.test"})
	got = append(got, next())
	if got[0] != "create r2 1" || got[1] != "delete r1 2" {
		t.Errorf("events = %v, want create r2 1, delete r1 2", got)
	}
	fc.mu.Lock()
	sinces := fc.sinces
	fc.mu.Unlock()
	if len(sinces) < 2 || sinces[0] != "" || sinces[1] != "1" {
		t.Errorf("stream requests since = %q, want \"\" then \"1\" (events %v)", sinces, got)
	}
	cancel()
	for range events { // closes once ctx ends
	}
}

func TestUnauthorized(t *testing.T) {
	srv := httptest.NewServer(&fakeController{})
	defer srv.Close()
	src := New(srv.URL, "wrong", slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer src.http.CloseIdleConnections()
	if _, err := src.Routes(context.Background()); err == nil {
		t.Error("Routes with a wrong key succeeded")
	}
	if _, err := src.WatchRoutes(context.Background()); err == nil {
		t.Error("WatchRoutes with a wrong key succeeded")
	}
}
