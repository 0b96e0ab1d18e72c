package server

import (
	"slices"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// routeDomains lists the domains of an app's routes.
func routeDomains(t *testing.T, h *harness, app string) []string {
	t.Helper()
	routes, err := h.client.AppRoutes(t.Context(), app)
	if err != nil {
		t.Fatalf("routes of %s: %v", app, err)
	}
	var out []string
	for _, r := range routes {
		out = append(out, r.Domain)
	}
	return out
}

// TestDefaultRoute: with a default route domain, an app that is not a
// system app gets "<name>.<domain>" to "<name>-web" as it is created,
// unless it opts out; the route is an ordinary one.
func TestDefaultRoute(t *testing.T) {
	h := newHarnessWith(t, func(o *Options) { o.DefaultRouteDomain = "Apps.Example.COM" })
	ctx := t.Context()
	c := h.client

	named := h.app(t, "web1")
	routes, err := c.AppRoutes(ctx, named.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 {
		t.Fatalf("web1 has routes %+v, want one", routes)
	}
	if r := routes[0]; r.Type != controller.RouteTypeHTTP || r.Domain != "web1.apps.example.com" || r.Service != "web1-web" || r.Path != "/" || r.AppID != named.ID {
		t.Fatalf("default route = %+v, want http web1.apps.example.com / to web1-web", r)
	}

	generated := h.app(t, "")
	if got, want := routeDomains(t, h, generated.ID), []string{generated.Name + ".apps.example.com"}; !slices.Equal(got, want) {
		t.Errorf("generated app %s has routes %v, want %v", generated.Name, got, want)
	}

	sys := h.systemApp(t, "router")
	if got := routeDomains(t, h, sys.ID); len(got) != 0 {
		t.Errorf("system app has routes %v, want none", got)
	}

	quiet := &controller.App{Name: "quiet"}
	if err := c.CreateAppWithoutDefaultRoute(ctx, quiet); err != nil {
		t.Fatal(err)
	}
	if got := routeDomains(t, h, quiet.ID); len(got) != 0 {
		t.Errorf("app created with ?default_route=false has routes %v, want none", got)
	}
	wantCode(t, rawRequest(t, h, "POST", "/apps?default_route=maybe", "application/json", []byte(`{"name":"maybe"}`), nil), httpjson.CodeValidation, "default_route")

	// A name whose domain is routed already is refused, and leaves
	// neither the app nor a route behind.
	taken := &controller.Route{Type: controller.RouteTypeHTTP, Service: "quiet-web", Domain: "taken.apps.example.com"}
	if err := c.CreateRoute(ctx, quiet.ID, taken); err != nil {
		t.Fatal(err)
	}
	err = c.CreateApp(ctx, &controller.App{Name: "taken"})
	wantCode(t, err, httpjson.CodeObjectExists, "domain")
	if !strings.Contains(err.Error(), "taken.apps.example.com") {
		t.Errorf("collision error %q does not name the domain", err)
	}
	wantCode(t, second(c.App(ctx, "taken")), httpjson.CodeNotFound, "")
	all, err := c.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Errorf("routes after the refused create: %d, want 3 (web1's, the generated app's, quiet's)", len(all))
	}
	// The same name without the default route is fine.
	if err := c.CreateAppWithoutDefaultRoute(ctx, &controller.App{Name: "taken"}); err != nil {
		t.Fatalf("create without the default route: %v", err)
	}

	// An ordinary route: DELETE removes it.
	if err := c.DeleteRoute(ctx, named.ID, routes[0].ID); err != nil {
		t.Fatalf("delete the default route: %v", err)
	}
	if got := routeDomains(t, h, named.ID); len(got) != 0 {
		t.Errorf("routes after delete: %v, want none", got)
	}
	// An app's deletion takes its routes with it.
	if _, err := c.DeleteApp(ctx, generated.ID); err != nil {
		t.Fatal(err)
	}
	all, err = c.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if r.Domain == generated.Name+".apps.example.com" {
			t.Errorf("route %s outlived its app", r.Domain)
		}
	}
}

// TestNoDefaultRouteDomain: without the setting, apps get no route.
func TestNoDefaultRouteDomain(t *testing.T) {
	h := newHarness(t)
	app := h.app(t, "plain")
	if got := routeDomains(t, h, app.ID); len(got) != 0 {
		t.Errorf("app has routes %v, want none", got)
	}
}

func TestValidRouteDomain(t *testing.T) {
	tests := []struct {
		domain string
		ok     bool
	}{
		{"example.com", true},
		{"apps.dev.localflynn.com", true},
		{"localhost", true},
		{"1.example.com", true},
		{strings.Repeat("a", 63) + ".com", true},
		{strings.Repeat("a.", 110) + "aa", true}, // 222: room for a 30-letter app name and its dot
		{strings.Repeat("a.", 111) + "a", false}, // 223: none
		{"*.example.com", false},
		{"example.com.", false},
		{".example.com", false},
		{"exa mple.com", false},
		{"-a.example.com", false},
		{"a_b.example.com", false},
		{strings.Repeat("a", 64) + ".com", false},
	}
	for _, tt := range tests {
		if got := validRouteDomain(tt.domain); got != tt.ok {
			t.Errorf("validRouteDomain(%q) = %v, want %v", tt.domain, got, tt.ok)
		}
	}
}
