package provider

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/openflynn/flynn/appliance/redis"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/pgtest"
)

// pg is the PostgreSQL of the tests that run a real controller.
var pg pgtest.Shared

func TestMain(m *testing.M) { goleak.VerifyTestMain(pg.Main(m)) }

const (
	testKey  = "redis-api-key"
	testHost = "redis.example.com"
)

// newAPI serves a provider on f until the test ends and returns its URL.
func newAPI(t *testing.T, f *fakeController) string {
	t.Helper()
	srv := httptest.NewServer(Handler(New(f, Options{Host: testHost}), testKey, nil))
	t.Cleanup(srv.Close)
	return srv.URL
}

// call makes a request with key as the basic-auth password ("": none) and
// returns the status and body.
func call(t *testing.T, method, url, key, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.SetBasicAuth("", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// provision provisions through the API and returns the reply.
func provision(t *testing.T, api string) *controller.ProvisionedResource {
	t.Helper()
	status, body := call(t, http.MethodPost, api+Path, testKey, `{"config":{}}`)
	if status != http.StatusCreated {
		t.Fatalf("POST %s = %d %s, want 201", Path, status, body)
	}
	var res controller.ProvisionedResource
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	return &res
}

func TestProvision(t *testing.T) {
	f := newFakeController()
	api := newAPI(t, f)
	res := provision(t, api)

	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(res.ID) {
		t.Errorf("id %q, want 16 hex digits", res.ID)
	}
	password := res.Env[redis.EnvPassword]
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(password) {
		t.Errorf("password %q, want 64 hex digits (256 bits)", password)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	app, err := f.app("redis-" + res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !app.System || app.Meta[redis.MetaResource] != redis.ResourceKind {
		t.Errorf("app %+v, want a system app with meta %s=%s", app, redis.MetaResource, redis.ResourceKind)
	}
	rel := f.releases[app.ReleaseID]
	if rel == nil {
		t.Fatalf("app %s has no current release", app.Name)
	}
	wantRel := &controller.Release{
		ID: rel.ID, AppID: app.ID, ArtifactID: redisArtifact,
		Env: map[string]string{"REDIS_PASSWORD": password},
		Processes: map[string]controller.ProcessType{"server": {
			Ports:   []controller.Port{{Proto: "tcp"}},
			Service: "redis-" + res.ID,
			Volumes: []controller.Volume{{Name: "redis-" + res.ID + "-data", Target: "/data"}},
		}},
	}
	if !reflect.DeepEqual(rel, wantRel) {
		t.Errorf("release\n%+v\nwant\n%+v", rel, wantRel)
	}
	if form := f.formations[app.ID]; form == nil || form.ReleaseID != rel.ID || !reflect.DeepEqual(form.Processes, map[string]int{"server": 1}) {
		t.Errorf("formation %+v, want server=1 of release %s", form, rel.ID)
	}
	routes := f.routes[app.ID]
	if len(routes) != 1 || routes[0].Type != "tcp" || routes[0].Service != "redis-"+res.ID || routes[0].Port != 3000 {
		t.Fatalf("routes %+v, want one tcp route to redis-%s on the port the controller chose", routes, res.ID)
	}

	wantEnv := map[string]string{
		"REDIS_URL":      "redis://:" + password + "@redis.example.com:3000",
		"REDIS_HOST":     "redis.example.com",
		"REDIS_PORT":     "3000",
		"REDIS_PASSWORD": password,
	}
	if !reflect.DeepEqual(res.Env, wantEnv) {
		t.Errorf("env %v, want %v", res.Env, wantEnv)
	}
	u, err := url.Parse(res.Env["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	if pw, _ := u.User.Password(); u.Scheme != "redis" || u.Host != "redis.example.com:3000" || pw != password {
		t.Errorf("REDIS_URL %s does not parse back to its parts", u)
	}
}

func TestProvisionTwice(t *testing.T) {
	f := newFakeController()
	api := newAPI(t, f)
	a, b := provision(t, api), provision(t, api)
	if a.ID == b.ID || a.Env["REDIS_PASSWORD"] == b.Env["REDIS_PASSWORD"] || a.Env["REDIS_PORT"] == b.Env["REDIS_PORT"] {
		t.Errorf("two provisionings share an id, a password or a port: %v and %v", a, b)
	}
}

// TestProvisionFails checks that a provisioning a controller call breaks
// answers 503 and leaves no app behind.
func TestProvisionFails(t *testing.T) {
	tests := []struct {
		failing string
		// removes: the app made before the failure is deleted.
		removes bool
	}{
		{"AppRelease", false},
		{"CreateApp", false},
		{"CreateRelease", true},
		{"SetAppRelease", true},
		{"CreateRoute", true},
		{"PutFormation", true},
	}
	for _, tt := range tests {
		t.Run(tt.failing, func(t *testing.T) {
			f := newFakeController()
			f.fail = tt.failing
			status, body := call(t, http.MethodPost, newAPI(t, f)+Path, testKey, `{"config":{}}`)
			if status != http.StatusServiceUnavailable || !strings.Contains(string(body), tt.failing+" failed") {
				t.Errorf("POST = %d %s, want 503 saying what failed", status, body)
			}
			if got := f.appNames(); !slices.Equal(got, []string{"redis"}) {
				t.Errorf("apps left: %q, want only redis", got)
			}
			if deleted := slices.Contains(f.called(), "DeleteApp"); deleted != tt.removes {
				t.Errorf("DeleteApp called: %v, want %v (calls %q)", deleted, tt.removes, f.called())
			}
		})
	}
}

func TestProvisionWithoutImage(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*fakeController)
	}{
		{"no redis app", func(f *fakeController) { delete(f.apps, "app-redis") }},
		{"no release", func(f *fakeController) { f.apps["app-redis"].ReleaseID = "" }},
		{"a release without artifact", func(f *fakeController) { f.releases[f.apps["app-redis"].ReleaseID].ArtifactID = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeController()
			tt.setup(f)
			status, body := call(t, http.MethodPost, newAPI(t, f)+Path, testKey, `{}`)
			if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "no redis server image") {
				t.Errorf("POST = %d %s, want 503 saying there is no image", status, body)
			}
			if slices.Contains(f.called(), "CreateApp") {
				t.Error("an app was made")
			}
		})
	}
}

// TestProvisionAbandoned checks that a provisioning whose request ends
// before it is done (the controller gave up waiting) removes its app: the
// controller will never hold the resource, so nothing else would.
func TestProvisionAbandoned(t *testing.T) {
	f := newFakeController()
	ctx, cancel := context.WithCancel(t.Context())
	f.before = func(call string) {
		if call == "PutFormation" {
			cancel()
		}
	}
	res, err := New(f, Options{Host: testHost}).Provision(ctx)
	if err == nil {
		t.Fatalf("Provision = %+v, want an error", res)
	}
	if got := f.appNames(); !slices.Equal(got, []string{"redis"}) {
		t.Errorf("apps left: %q, want only redis", got)
	}
}

func TestDeprovision(t *testing.T) {
	f := newFakeController()
	api := newAPI(t, f)
	res := provision(t, api)
	keep := provision(t, api)
	// An app with a name of the provider's form that it did not make.
	const other = "0123456789abcdef"
	if err := f.CreateApp(t.Context(), &controller.App{Name: "redis-" + other}); err != nil {
		t.Fatal(err)
	}

	if status, body := call(t, http.MethodDelete, api+Path+"/"+res.ID, testKey, ""); status != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s, want 204", status, body)
	}
	want := []string{"redis", "redis-" + other, "redis-" + keep.ID}
	slices.Sort(want)
	if got := f.appNames(); !slices.Equal(got, want) {
		t.Errorf("apps %q, want %q", got, want)
	}

	tests := []struct{ name, id string }{
		{"deleted already", res.ID},
		{"not an id", "controller"},
		{"a path", "..%2Fcontroller"},
		{"an app the provider did not make", other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, body := call(t, http.MethodDelete, api+Path+"/"+tt.id, testKey, ""); status != http.StatusNotFound {
				t.Errorf("DELETE %s = %d %s, want 404", tt.id, status, body)
			}
			if got := f.appNames(); !slices.Equal(got, want) {
				t.Errorf("apps %q, want %q", got, want)
			}
		})
	}

	f.fail = "DeleteApp"
	if status, body := call(t, http.MethodDelete, api+Path+"/"+keep.ID, testKey, ""); status != http.StatusServiceUnavailable {
		t.Errorf("DELETE while the controller fails = %d %s, want 503", status, body)
	}
}

func TestAuth(t *testing.T) {
	f := newFakeController()
	api := newAPI(t, f)
	tests := []struct {
		name, method, path, key string
		want                    int
	}{
		{"provision without the key", http.MethodPost, Path, "", http.StatusUnauthorized},
		{"provision with a wrong key", http.MethodPost, Path, "guess", http.StatusUnauthorized},
		{"provision with a prefix of the key", http.MethodPost, Path, testKey[:3], http.StatusUnauthorized},
		{"remove without the key", http.MethodDelete, Path + "/0123456789abcdef", "", http.StatusUnauthorized},
		{"health needs no key", http.MethodGet, "/health", "", http.StatusOK},
		{"a method the API has not", http.MethodGet, Path, testKey, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := ""
			if tt.method == http.MethodPost {
				body = `{"config":{}}`
			}
			if status, b := call(t, tt.method, api+tt.path, tt.key, body); status != tt.want {
				t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, status, b, tt.want)
			}
		})
	}
	if slices.Contains(f.called(), "CreateApp") {
		t.Error("a refused request made an app")
	}
}

// badBodies are provisioning requests the API refuses, with the status.
var badBodies = []struct {
	name, body, contentType string
	want                    int
}{
	{"empty", "", "application/json", http.StatusBadRequest},
	{"not JSON", "{", "application/json", http.StatusBadRequest},
	{"an array", "[]", "application/json", http.StatusBadRequest},
	{"an unknown field", `{"config":{},"plan":"big"}`, "application/json", http.StatusBadRequest},
	{"a config that is no object", `{"config":[1]}`, "application/json", http.StatusBadRequest},
	{"a config string", `{"config":"x"}`, "application/json", http.StatusBadRequest},
	{"a setting", `{"config":{"maxmemory":"1gb"}}`, "application/json", http.StatusBadRequest},
	{"two values", `{}{}`, "application/json", http.StatusBadRequest},
	{"too large", `{"config":{},"x":"` + strings.Repeat("a", maxBody) + `"}`, "application/json", http.StatusRequestEntityTooLarge},
	{"not JSON by its type", `{}`, "text/plain", http.StatusUnsupportedMediaType},
}

func TestBadInput(t *testing.T) {
	f := newFakeController()
	api := newAPI(t, f)
	for _, tt := range badBodies {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, api+Path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tt.contentType)
			req.SetBasicAuth("", testKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e httpjson.Error
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != tt.want || e.Message == "" {
				t.Errorf("POST %q = %d %+v (%v), want %d with a JSON error", tt.body, resp.StatusCode, e, err, tt.want)
			}
		})
	}
	if slices.Contains(f.called(), "CreateApp") {
		t.Error("a refused request made an app")
	}
	for _, body := range []string{`{}`, `{"config":null}`, `{"config":{}}`, ` {"config": { } } `} {
		if status, b := call(t, http.MethodPost, api+Path, testKey, body); status != http.StatusCreated {
			t.Errorf("POST %s = %d %s, want 201", body, status, b)
		}
	}
}

// FuzzDecodeRequest checks that the decoder never panics and either
// accepts a request the provider can act on or refuses it with a 4xx JSON
// error.
func FuzzDecodeRequest(f *testing.F) {
	for _, b := range badBodies {
		if len(b.body) < 1000 {
			f.Add(b.body)
		}
	}
	for _, s := range []string{`{}`, `{"config":null}`, `{"config":{}}`, `{"config":{}}  `, `{"config":{"a":{}}}`, `{"Config":{}}`, "{\"config\":{}}\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		req, err := DecodeRequest(w, r)
		if err != nil {
			var e *httpjson.Error
			if !errors.As(err, &e) || e.Status() < 400 || e.Status() >= 500 {
				t.Fatalf("DecodeRequest(%q) = %v, want a 4xx *httpjson.Error", body, err)
			}
			return
		}
		if cfg := strings.TrimSpace(string(req.Config)); cfg != "" && cfg != "null" {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(req.Config, &m); err != nil || len(m) != 0 {
				t.Fatalf("DecodeRequest(%q) accepted the config %s", body, req.Config)
			}
		}
	})
}

func TestEnv(t *testing.T) {
	got := Env("redis.example.com", 3007, "pw")
	if got["REDIS_URL"] != "redis://:pw@redis.example.com:3007" || got["REDIS_PORT"] != strconv.Itoa(3007) {
		t.Errorf("Env = %v", got)
	}
}
