package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

const testKey = "the-provider-key"

// fakeStore keeps databases in memory.
type fakeStore struct {
	mu      sync.Mutex
	dbs     map[string]bool
	n       int
	fail    error // returned by every call when set
	dropped []string
}

var _ Store = (*fakeStore)(nil)

func newFakeStore() *fakeStore { return &fakeStore{dbs: map[string]bool{}} }

func (f *fakeStore) Create(context.Context) (*Database, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	f.n++
	name := namePrefix + strings.Repeat("0", 15) + string(rune('0'+f.n))
	f.dbs[name] = true
	return &Database{Name: name, Password: "pw" + name}, nil
}

func (f *fakeStore) Drop(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	if !f.dbs[name] {
		return ErrNotFound
	}
	delete(f.dbs, name)
	f.dropped = append(f.dropped, name)
	return nil
}

func (f *fakeStore) Ping(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail
}

func newTestServer(t testing.TB, store Store) *httptest.Server {
	t.Helper()
	srv, err := New(store, Options{Key: testKey, Host: "postgres.example.test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs
}

// call makes a request as the controller would: the key in the URL's
// userinfo when key is not empty.
func call(t testing.TB, hs *httptest.Server, method, path, key, contentType, body string) (int, []byte) {
	t.Helper()
	u, _ := url.Parse(hs.URL + path)
	if key != "" {
		u.User = url.UserPassword("", key)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u.String(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestProvision(t *testing.T) {
	store := newFakeStore()
	hs := newTestServer(t, store)
	code, body := call(t, hs, http.MethodPost, "/databases", testKey, "application/json", `{"config":{}}`)
	if code != http.StatusCreated {
		t.Fatalf("POST = %d %s, want 201", code, body)
	}
	var res controller.ProvisionedResource
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	name := "app_0000000000000001"
	want := map[string]string{
		"DATABASE_URL": "postgres://" + name + ":pw" + name + "@postgres.example.test:3432/" + name,
		"PGHOST":       "postgres.example.test",
		"PGPORT":       "3432",
		"PGUSER":       name,
		"PGPASSWORD":   "pw" + name,
		"PGDATABASE":   name,
	}
	if res.ID != name || len(res.Env) != len(want) {
		t.Fatalf("reply = %+v, want id %s and %d variables", res, name, len(want))
	}
	for k, v := range want {
		if res.Env[k] != v {
			t.Errorf("%s = %q, want %q", k, res.Env[k], v)
		}
	}
	// Without a config, as `flynn resource add postgres` sends it.
	if code, body := call(t, hs, http.MethodPost, "/databases", testKey, "", `{}`); code != http.StatusCreated {
		t.Fatalf("POST {} = %d %s, want 201", code, body)
	}

	if code, body := call(t, hs, http.MethodDelete, "/databases/"+name, testKey, "", ""); code != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s, want 204", code, body)
	}
	code, body = call(t, hs, http.MethodDelete, "/databases/"+name, testKey, "", "")
	if code != http.StatusNotFound || !strings.Contains(string(body), `no database \"`+name+`\"`) {
		t.Fatalf("DELETE again = %d %s, want 404 naming it", code, body)
	}
}

func TestRequestsNeedTheKey(t *testing.T) {
	store := newFakeStore()
	hs := newTestServer(t, store)
	tests := []struct {
		name, method, path, key string
		want                    int
	}{
		{"no key", http.MethodPost, "/databases", "", http.StatusUnauthorized},
		{"wrong key", http.MethodPost, "/databases", "guess", http.StatusUnauthorized},
		{"prefix of the key", http.MethodPost, "/databases", testKey[:5], http.StatusUnauthorized},
		{"delete without key", http.MethodDelete, "/databases/app_0000000000000001", "", http.StatusUnauthorized},
		{"unknown path without key", http.MethodGet, "/databases", "", http.StatusUnauthorized},
		{"unknown path with key", http.MethodGet, "/nope", testKey, http.StatusNotFound},
		{"health needs none", http.MethodGet, "/health", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, hs, tt.method, tt.path, tt.key, "application/json", `{"config":{}}`)
			if code != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, code, body, tt.want)
			}
			if code == http.StatusUnauthorized && !strings.Contains(string(body), `"code":"unauthorized"`) {
				t.Errorf("body %s: want an unauthorized JSON error", body)
			}
		})
	}
	if store.n != 0 {
		t.Fatalf("%d databases created by requests without the key", store.n)
	}
}

func TestBadRequests(t *testing.T) {
	hs := newTestServer(t, newFakeStore())
	tests := []struct {
		name, contentType, body string
		wantStatus              int
		wantMessage             string
	}{
		{"empty body", "application/json", "", http.StatusBadRequest, "request body is empty"},
		{"not JSON", "application/json", "{", http.StatusBadRequest, "malformed JSON"},
		{"an option", "application/json", `{"config":{"size":"large"}}`, http.StatusBadRequest, `unknown option \"size\": the postgres provider takes no options`},
		{"config not an object", "application/json", `{"config":[1]}`, http.StatusBadRequest, "must be map"},
		{"unknown field", "application/json", `{"config":{},"apps":["x"]}`, http.StatusBadRequest, "unknown field"},
		{"two values", "application/json", `{}{}`, http.StatusBadRequest, "a single JSON value"},
		{"not JSON content", "text/plain", `{}`, http.StatusUnsupportedMediaType, "application/json"},
		{"too large", "application/json", `{"config":{"x":"` + strings.Repeat("a", DefaultMaxBody) + `"}}`, http.StatusRequestEntityTooLarge, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, hs, http.MethodPost, "/databases", testKey, tt.contentType, tt.body)
			if code != tt.wantStatus || !bytes.Contains(body, []byte(tt.wantMessage)) {
				t.Fatalf("POST %.40q = %d %s, want %d and %q", tt.body, code, body, tt.wantStatus, tt.wantMessage)
			}
		})
	}
}

// A database server that fails is the client's to retry, and its error
// stays in the log.
func TestStoreFailure(t *testing.T) {
	store := newFakeStore()
	store.fail = errors.New("connection refused to 10.0.0.9:5432")
	hs := newTestServer(t, store)
	for _, req := range []struct{ method, path, body string }{
		{http.MethodPost, "/databases", `{}`},
		{http.MethodDelete, "/databases/app_0000000000000001", ""},
		{http.MethodGet, "/health", ""},
	} {
		code, body := call(t, hs, req.method, req.path, testKey, "", req.body)
		var e httpjson.Error
		if code != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil || !e.Retry || strings.Contains(e.Message, "10.0.0.9") {
			t.Errorf("%s %s = %d %s; want 503, retry, no internal detail", req.method, req.path, code, body)
		}
	}
}

func TestNewNeedsHost(t *testing.T) {
	if _, err := New(newFakeStore(), Options{}); err == nil {
		t.Fatal("New without a host: no error")
	}
}
