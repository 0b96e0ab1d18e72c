package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// wantCode fails unless err is an API error with code (and field, if given).
func wantCode(t *testing.T, err error, code httpjson.Code, field string) {
	t.Helper()
	var e *httpjson.Error
	if !asAPIError(err, &e) || e.Code != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
	if field != "" && e.Field != field {
		t.Fatalf("err = %v: field = %q, want %q", err, e.Field, field)
	}
}

func asAPIError(err error, target **httpjson.Error) bool {
	e, ok := err.(*httpjson.Error)
	if ok {
		*target = e
	}
	return ok
}

func TestAuth(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name, path, key string
		want            int
	}{
		{"no key", "/apps", "", http.StatusUnauthorized},
		{"wrong key", "/apps", "nope", http.StatusUnauthorized},
		{"right key", "/apps", testKey, http.StatusOK},
		{"ping needs no key", "/ping", "", http.StatusOK},
		{"unknown endpoint", "/nope", testKey, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, h.url+tt.path, nil)
			if tt.key != "" {
				req.SetBasicAuth("", tt.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusUnauthorized {
				wantCode(t, httpjson.ReadError(resp), httpjson.CodeUnauthorized, "")
			}
		})
	}
}

func TestApps(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client

	app := &controller.App{Name: "my-app", Meta: map[string]string{"owner": "ops"}}
	if err := c.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if app.ID == "" || app.Strategy != controller.StrategyOneByOne || app.CreatedAt.IsZero() {
		t.Fatalf("created app = %+v, want id, default strategy and timestamps", app)
	}
	generated := h.app(t, "")
	if !controller.ValidAppName(generated.Name) {
		t.Fatalf("generated name %q does not match %s", generated.Name, controller.AppNamePattern)
	}

	for _, ref := range []string{app.ID, app.Name} {
		got, err := c.App(ctx, ref)
		if err != nil {
			t.Fatalf("App(%q): %v", ref, err)
		}
		if got.ID != app.ID || got.Meta["owner"] != "ops" {
			t.Fatalf("App(%q) = %+v, want %+v", ref, got, app)
		}
	}

	strategy := controller.StrategyAllAtOnce
	updated, err := c.UpdateApp(ctx, app.Name, controller.AppUpdate{Strategy: &strategy})
	if err != nil {
		t.Fatal(err)
	}
	if updated.Strategy != strategy || updated.Meta["owner"] != "ops" {
		t.Fatalf("updated = %+v, want strategy %s and meta kept", updated, strategy)
	}

	errs := []struct {
		name  string
		err   error
		code  httpjson.Code
		field string
	}{
		{"duplicate name", c.CreateApp(ctx, &controller.App{Name: "my-app"}), httpjson.CodeObjectExists, "name"},
		{"upper case name", c.CreateApp(ctx, &controller.App{Name: "MyApp"}), httpjson.CodeValidation, "name"},
		{"leading digit", c.CreateApp(ctx, &controller.App{Name: "1app"}), httpjson.CodeValidation, "name"},
		{"too long", c.CreateApp(ctx, &controller.App{Name: strings.Repeat("a", 31)}), httpjson.CodeValidation, "name"},
		{"bad strategy", c.CreateApp(ctx, &controller.App{Name: "x", Strategy: "yolo"}), httpjson.CodeValidation, "strategy"},
		{"missing by name", second(c.App(ctx, "nope")), httpjson.CodeNotFound, ""},
		{"missing by id", second(c.App(ctx, "5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c")), httpjson.CodeNotFound, ""},
		{"update missing", second(c.UpdateApp(ctx, "nope", controller.AppUpdate{})), httpjson.CodeNotFound, ""},
		{"delete missing", second(c.DeleteApp(ctx, "nope")), httpjson.CodeNotFound, ""},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.err, tt.code, tt.field) })
	}
}

func second[T any](_ T, err error) error { return err }

func TestPagination(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 5; i++ {
		h.app(t, "")
	}
	// One page by hand: the Link header leads on.
	seen := map[string]bool{}
	next := "/apps?limit=2"
	pages := 0
	for next != "" {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, h.url+next, nil)
		req.SetBasicAuth("", testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var apps []*controller.App
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(body, &apps); err != nil {
			t.Fatalf("page %s: %v: %s", next, err, body)
		}
		if len(apps) > 2 {
			t.Fatalf("page has %d apps, want at most 2", len(apps))
		}
		for _, a := range apps {
			if seen[a.ID] {
				t.Fatalf("app %s on two pages", a.ID)
			}
			seen[a.ID] = true
		}
		pages++
		next = ""
		if link := resp.Header.Get("Link"); link != "" {
			next = link[1:strings.Index(link, ">")]
		}
	}
	if len(seen) != 5 || pages != 3 {
		t.Fatalf("saw %d apps on %d pages, want 5 on 3", len(seen), pages)
	}
	all, err := h.client.Apps(t.Context())
	if err != nil || len(all) != 5 {
		t.Fatalf("Apps() = %d apps, %v; want 5", len(all), err)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "cursor=%21%21"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, h.url+"/apps?"+q, nil)
		req.SetBasicAuth("", testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = httpjson.ReadError(resp)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("?%s: status %d (%v), want 400", q, resp.StatusCode, err)
		}
	}
}
