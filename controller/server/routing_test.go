package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// TestRouteRequestLog: a route's no_request_log goes through the API both
// ways, and PATCH changes it on an existing route and nothing else.
func TestRouteRequestLog(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client
	app := h.app(t, "web")

	rt := &controller.Route{Type: controller.RouteTypeHTTP, Service: "web-web", Domain: "busy.example.com", NoRequestLog: true}
	if err := c.CreateRoute(ctx, app.Name, rt); err != nil {
		t.Fatal(err)
	}
	if !rt.NoRequestLog {
		t.Fatalf("created route = %+v, want NoRequestLog", rt)
	}
	if got, err := c.Route(ctx, app.ID, rt.ID); err != nil || !got.NoRequestLog {
		t.Fatalf("Route = %+v, %v; want NoRequestLog", got, err)
	}

	yes, no := true, false
	for _, tt := range []struct {
		name string
		u    controller.RouteUpdate
		want bool
	}{
		{"log on", controller.RouteUpdate{NoRequestLog: &no}, false},
		{"empty update", controller.RouteUpdate{}, false},
		{"log off", controller.RouteUpdate{NoRequestLog: &yes}, true},
	} {
		got, err := c.UpdateRoute(ctx, app.Name, rt.ID, tt.u)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got.NoRequestLog != tt.want || got.Domain != rt.Domain || got.Service != rt.Service || got.ID != rt.ID {
			t.Fatalf("%s: UpdateRoute = %+v, want NoRequestLog %v and the route otherwise unchanged", tt.name, got, tt.want)
		}
	}

	wantCode(t, second(c.UpdateRoute(ctx, app.ID, "7f9c24e5-0000-4000-8000-000000000000", controller.RouteUpdate{NoRequestLog: &yes})), httpjson.CodeNotFound, "")
	wantCode(t, second(c.UpdateRoute(ctx, "nope", rt.ID, controller.RouteUpdate{NoRequestLog: &yes})), httpjson.CodeNotFound, "")
	for _, tt := range []struct{ name, body string }{
		{"not a boolean", `{"no_request_log":"off"}`},
		{"what the route matches", `{"domain":"other.example.com"}`},
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, h.url+"/apps/web/routes/"+rt.ID, strings.NewReader(tt.body))
		req.SetBasicAuth("", testKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: PATCH answered %d, want 400", tt.name, resp.StatusCode)
		}
	}
}
