package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/openflynn/flynn/controller"
)

func TestAppURL(t *testing.T) {
	plain := &controller.Route{Type: controller.RouteTypeHTTP, Domain: "example.test", Path: "/"}
	secure := &controller.Route{Type: controller.RouteTypeHTTP, Domain: "secure.example.test", Path: "/", Certificate: &controller.Certificate{}}
	wildcard := &controller.Route{Type: controller.RouteTypeHTTP, Domain: "*.example.test", Path: "/"}
	tcp := &controller.Route{Type: controller.RouteTypeTCP, Port: 3000}
	tests := []struct {
		name   string
		routes []*controller.Route
		path   string
		want   string
	}{
		{"first http route", []*controller.Route{tcp, plain, secure}, "", "http://example.test/"},
		{"tls", []*controller.Route{secure, plain}, "", "https://secure.example.test/"},
		{"path", []*controller.Route{plain}, "/admin?x=1", "http://example.test/admin?x=1"},
		{"path without slash", []*controller.Route{plain}, "admin", "http://example.test/admin"},
		{"wildcards passed over", []*controller.Route{wildcard, plain}, "", "http://example.test/"},
		{"none", []*controller.Route{tcp, wildcard}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := appURL(tt.routes, tt.path); got != tt.want {
				t.Fatalf("appURL = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBrowserArgs(t *testing.T) {
	tests := []struct {
		args, want []string
	}{
		{nil, []string{"http://x"}},
		{[]string{"--new-tab"}, []string{"--new-tab", "http://x"}},
		{[]string{"--url=%s", "-q"}, []string{"--url=http://x", "-q"}},
	}
	for _, tt := range tests {
		if got := browserArgs(tt.args, "http://x"); !slices.Equal(got, tt.want) {
			t.Errorf("browserArgs(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestOpen(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	h.fails("example has no HTTP route: add one with `flynn route add http DOMAIN`", "-a", "example", "open")
	if err := h.api.CreateRoute(context.Background(), app.ID, &controller.Route{Type: controller.RouteTypeHTTP, Service: "example-web", Domain: "example.example.test"}); err != nil {
		t.Fatal(err)
	}
	// Without a terminal: the URL, for scripts.
	if out := h.ok("-a", "example", "open", "/health"); out != "http://example.example.test/health\n" {
		t.Fatalf("open printed %q", out)
	}

	// With one: $BROWSER opens it.
	dir := t.TempDir()
	opened := filepath.Join(dir, "opened")
	browser := filepath.Join(dir, "browser")
	if err := os.WriteFile(browser, []byte("#!/bin/sh\necho \"$@\" > "+opened+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.env.Terminal = &fakeTerminal{resizes: make(chan struct{})}
	h.env.Browser = browser + " --new-tab:firefox"
	if out := h.ok("-a", "example", "open"); out != "Opening http://example.example.test/\n" {
		t.Fatalf("open with a browser printed %q", out)
	}
	if got, err := os.ReadFile(opened); err != nil || string(got) != "--new-tab http://example.example.test/\n" {
		t.Fatalf("the browser got %q (%v)", got, err)
	}
	h.env.Browser = filepath.Join(dir, "missing")
	h.fails("open http://example.example.test/ with "+h.env.Browser, "-a", "example", "open")
}
