package provider

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/appliance/redis"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func TestRestoreRefusesDump(t *testing.T) {
	ok := []string{"RESTORE", "k", "0", "fake:v", "REPLACE"}
	tests := []struct {
		name, dump, says string
	}{
		{"FLUSHALL", commands(ok, []string{"FLUSHALL"}), `"FLUSHALL"`},
		{"CONFIG", commands([]string{"config", "set", "dir", "/tmp"}), `"config"`},
		{"a database beyond 15", commands([]string{"SELECT", "16"}), "database"},
		{"a database that is no number", commands([]string{"SELECT", "-1"}), "database"},
		{"SELECT of two", commands([]string{"SELECT", "1", "2"}), "one argument"},
		{"a negative TTL", commands([]string{"RESTORE", "k", "-1", "fake:v"}), "TTL"},
		{"a TTL that is no number", commands([]string{"RESTORE", "k", "1s", "fake:v"}), "TTL"},
		{"ABSTTL", commands([]string{"RESTORE", "k", "0", "fake:v", "ABSTTL"}), "not REPLACE"},
		{"too many arguments", commands([]string{"RESTORE", "k", "0", "fake:v", "REPLACE", "ABSTTL"}), "arguments"},
		{"too few arguments", commands([]string{"RESTORE", "k", "0"}), "arguments"},
		{"an inline command", "FLUSHALL\r\n", "command 1"},
		{"an integer", ":1\r\n", "not an array"},
		{"a nested array", "*1\r\n*1\r\n$1\r\na\r\n", "command 1"},
		{"an empty array", "*0\r\n", "not an array"},
		{"cut short", commands(ok)[:20], "ends in the middle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newDumpHarness(t, Options{})
			id, r := h.server(t)
			status, body := call(t, http.MethodPost, h.api+Path+"/"+id+"/restore", testKey, tt.dump)
			if status != http.StatusBadRequest || !strings.Contains(message(body), tt.says) {
				t.Errorf("POST restore = %d %s, want 400 saying %q", status, body, tt.says)
			}
			if dials, cmds := r.stats(); dials != 0 || len(r.data()) != 0 {
				t.Errorf("the server was reached (%d dials, commands %q) and holds %v; want it untouched", dials, cmds, r.data())
			}
		})
	}
}

func TestRestoreKeyRefused(t *testing.T) {
	tests := []struct {
		name   string
		dump   string
		status int
		says   string
	}{
		{"a payload the server refuses", commands([]string{"RESTORE", "good", "0", "fake:1"}, []string{"RESTORE", "bad key", "0", "garbage", "REPLACE"}),
			http.StatusBadRequest, `key "bad key"`},
		{"a key that exists, without REPLACE", commands([]string{"RESTORE", "taken", "0", "fake:1"}), http.StatusConflict, `key "taken"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newDumpHarness(t, Options{})
			id, r := h.server(t)
			r.set(0, "taken", "mine", -1)
			status, body := call(t, http.MethodPost, h.api+Path+"/"+id+"/restore", testKey, tt.dump)
			if status != tt.status || !strings.Contains(message(body), tt.says) {
				t.Errorf("POST restore = %d %s, want %d saying %q", status, body, tt.status, tt.says)
			}
			if got := r.data()[0]["taken"].value; got != "mine" {
				t.Errorf("the existing key holds %q, want it kept", got)
			}
		})
	}
}

func TestRestoreWaitsForServer(t *testing.T) {
	dump := commands([]string{"SELECT", "2"}, []string{"RESTORE", "k", "0", "fake:v", "REPLACE"})
	t.Run("it comes up", func(t *testing.T) {
		h := newDumpHarness(t, Options{})
		id, r := h.server(t)
		r.refuseDials = 3
		status, body := call(t, http.MethodPost, h.api+Path+"/"+id+"/restore", testKey, dump)
		var res RestoreResult
		if status != http.StatusOK || json.Unmarshal(body, &res) != nil || res.Keys != 1 {
			t.Fatalf("POST restore = %d %s, want 200 with 1 key", status, body)
		}
		if dials, _ := r.stats(); dials != 4 {
			t.Errorf("%d dials, want 4", dials)
		}
		if got := r.data()[2]["k"].value; got != "v" {
			t.Errorf("db 2 key k = %q, want v", got)
		}
	})
	t.Run("it does not", func(t *testing.T) {
		h := newDumpHarness(t, Options{RestoreWait: 50 * time.Millisecond})
		res := provision(t, h.api) // no server behind it
		status, body := call(t, http.MethodPost, h.api+Path+"/"+res.ID+"/restore", testKey, dump)
		if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "did not answer") {
			t.Errorf("POST restore = %d %s, want 503 saying it did not answer", status, body)
		}
	})
}

func TestRecreate(t *testing.T) {
	h := newDumpHarness(t, Options{})
	const id, password = "00112233445566ff", "pw-0123"
	put := func(id, body string) (int, []byte) {
		t.Helper()
		return call(t, http.MethodPut, h.api+Path+"/"+id, testKey, body)
	}
	body := `{"env":{"REDIS_PASSWORD":"` + password + `","REDIS_PORT":"3500"}}`
	status, reply := put(id, body)
	var res controller.ProvisionedResource
	if status != http.StatusOK || json.Unmarshal(reply, &res) != nil {
		t.Fatalf("PUT = %d %s, want 200 with the resource", status, reply)
	}
	wantEnv := Env(testHost, 3500, password)
	if res.ID != id || !mapsEqual(res.Env, wantEnv) {
		t.Errorf("PUT answered %+v, want id %s and env %v", res, id, wantEnv)
	}
	h.f.mu.Lock()
	app, err := h.f.app(redis.AppName(id))
	if err != nil {
		h.f.mu.Unlock()
		t.Fatal(err)
	}
	rel, routes := h.f.releases[app.ReleaseID], h.f.routes[app.ID]
	h.f.mu.Unlock()
	if rel == nil || rel.Env[redis.EnvPassword] != password || len(routes) != 1 || routes[0].Port != 3500 || app.Meta[redis.MetaResource] != redis.ResourceKind {
		t.Errorf("made app %+v, release %+v, routes %+v; want the provider's app with the password and port 3500", app, rel, routes)
	}

	created := len(h.f.called())
	if status, reply := put(id, body); status != http.StatusOK || !strings.Contains(string(reply), password) {
		t.Errorf("PUT again = %d %s, want 200", status, reply)
	}
	if calls := h.f.called()[created:]; slices.Contains(calls, "CreateApp") || slices.Contains(calls, "CreateRoute") {
		t.Errorf("PUT again made something: %q", calls)
	}

	const others = "0123456789abcdef"
	if err := h.f.CreateApp(t.Context(), &controller.App{Name: redis.AppName(others)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, id, body string
		want           int
	}{
		{"another password", id, `{"env":{"REDIS_PASSWORD":"other","REDIS_PORT":"3500"}}`, http.StatusConflict},
		{"an app that is not the provider's", others, body, http.StatusConflict},
		{"a port taken", "ffeeddccbbaa9988", body, http.StatusConflict},
		{"a bad id", "redis", body, http.StatusBadRequest},
		{"no password", "ffeeddccbbaa9988", `{"env":{"REDIS_PORT":"3500"}}`, http.StatusBadRequest},
		{"a password with a space", "ffeeddccbbaa9988", `{"env":{"REDIS_PASSWORD":"a b","REDIS_PORT":"3501"}}`, http.StatusBadRequest},
		{"no port", "ffeeddccbbaa9988", `{"env":{"REDIS_PASSWORD":"pw"}}`, http.StatusBadRequest},
		{"a port out of range", "ffeeddccbbaa9988", `{"env":{"REDIS_PASSWORD":"pw","REDIS_PORT":"80"}}`, http.StatusBadRequest},
		{"an unknown field", "ffeeddccbbaa9988", `{"env":{"REDIS_PASSWORD":"pw","REDIS_PORT":"3501"},"x":1}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, reply := put(tt.id, tt.body); status != tt.want {
				t.Errorf("PUT %s %s = %d %s, want %d", tt.id, tt.body, status, reply, tt.want)
			}
		})
	}
	want := []string{"redis", redis.AppName(others), redis.AppName(id)}
	slices.Sort(want)
	if got := h.f.appNames(); !slices.Equal(got, want) {
		t.Errorf("apps %q, want %q (a failed PUT leaves nothing)", got, want)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// message is the message of a JSON error body.
func message(body []byte) string {
	var e httpjson.Error
	if err := json.Unmarshal(body, &e); err != nil {
		return string(body)
	}
	return e.Message
}
