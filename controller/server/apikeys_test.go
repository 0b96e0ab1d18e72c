package server

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/poll"
)

// person returns a client that uses a new API key named name, and the key.
func (h *harness) person(t testing.TB, name string) (*client.Client, *controller.APIKey) {
	t.Helper()
	k, err := h.client.CreateAPIKey(t.Context(), name)
	if err != nil {
		t.Fatalf("create API key %q: %v", name, err)
	}
	return client.New(h.url, k.Secret), k
}

// rawGet is GET path with key, answering the status and body.
func rawGet(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	req.SetBasicAuth("", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestAPIKeys(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client

	alice, err := c.CreateAPIKey(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := hex.DecodeString(alice.Secret); err != nil || len(b) != apiKeySecretBytes {
		t.Fatalf("secret %q: want %d random bytes in hex", alice.Secret, apiKeySecretBytes)
	}
	if alice.ID == "" || alice.Name != "alice@example.com" || alice.CreatedAt.IsZero() {
		t.Fatalf("created key = %+v, want id, name and time", alice)
	}

	// A person's key works, and the request is a person's.
	asAlice := client.New(h.url, alice.Secret)
	if _, err := asAlice.Apps(ctx); err != nil {
		t.Fatalf("list apps with alice's key: %v", err)
	}
	// A person may add a colleague.
	bob, err := asAlice.CreateAPIKey(ctx, "bob")
	if err != nil {
		t.Fatalf("alice adds bob: %v", err)
	}

	// Lists and reads name keys, never their secrets or hashes.
	for _, path := range []string{"/api-keys", "/api-keys/bob", "/api-keys/" + bob.ID} {
		status, body := rawGet(t, h.url+path, testKey)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		for _, secret := range []string{alice.Secret, bob.Secret, "secret", "hash"} {
			if strings.Contains(body, secret) {
				t.Errorf("GET %s shows %q: %s", path, secret, body)
			}
		}
	}
	list, err := c.APIKeys(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alice@example.com" || list[1].Name != "bob" {
		t.Fatalf("APIKeys = %+v, %v; want alice and bob", list, err)
	}
	// The event log does not carry secrets either.
	events, err := h.store.Events.List(ctx, postgres.EventQuery{ObjectTypes: []string{controller.ObjectTypeAPIKey}})
	if err != nil || len(events) != 2 {
		t.Fatalf("API key events = %d, %v; want 2", len(events), err)
	}
	for _, e := range events {
		if strings.Contains(string(e.Data), alice.Secret) || strings.Contains(string(e.Data), bob.Secret) || strings.Contains(string(e.Data), "hash") {
			t.Errorf("event %s %s carries a secret: %s", e.Op, e.ObjectType, e.Data)
		}
	}

	errs := []struct {
		name  string
		err   error
		code  httpjson.Code
		field string
	}{
		{"name taken", second(c.CreateAPIKey(ctx, "bob")), httpjson.CodeObjectExists, "name"},
		{"bad name", second(c.CreateAPIKey(ctx, "bob smith")), httpjson.CodeValidation, "name"},
		{"empty name", second(c.CreateAPIKey(ctx, "")), httpjson.CodeValidation, "name"},
		{"name like an id", second(c.CreateAPIKey(ctx, "5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c")), httpjson.CodeValidation, "name"},
		{"revoke missing", second(c.RevokeAPIKey(ctx, "carol")), httpjson.CodeNotFound, ""},
		{"get missing", second(c.APIKey(ctx, "carol")), httpjson.CodeNotFound, ""},
		{"wrong secret", second(client.New(h.url, bob.Secret+"0").Apps(ctx)), httpjson.CodeUnauthorized, ""},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.err, tt.code, tt.field) })
	}

	// A revoked key fails at once, even one the cache holds.
	asBob := client.New(h.url, bob.Secret)
	poll.Until(t, 10*time.Second, "bob's key is cached", func() bool {
		_, err := asBob.Apps(ctx)
		return err == nil && h.server.keys.get(hashSecret(bob.Secret)) != nil
	})
	revoked, err := asAlice.RevokeAPIKey(ctx, "bob")
	if err != nil || revoked.ID != bob.ID || revoked.Secret != "" {
		t.Fatalf("revoke bob = %+v, %v", revoked, err)
	}
	wantCode(t, second(asBob.Apps(ctx)), httpjson.CodeUnauthorized, "")
	if _, err := asAlice.Apps(ctx); err != nil {
		t.Fatalf("alice after bob's revocation: %v", err)
	}
}

// TestLastAPIKey: a person may revoke any key but the last one, which
// takes the cluster key; the controller key always works.
func TestLastAPIKey(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	asAlice, alice := h.person(t, "alice")
	_, bob := h.person(t, "bob")

	if _, err := asAlice.RevokeAPIKey(ctx, bob.ID); err != nil {
		t.Fatalf("alice revokes bob: %v", err)
	}
	err := second(asAlice.RevokeAPIKey(ctx, "alice"))
	wantCode(t, err, httpjson.CodePreconditionFailed, "")
	if !strings.Contains(err.Error(), "flynn --system") {
		t.Errorf("refusal %q does not say how to do it", err)
	}
	if _, err := asAlice.Apps(ctx); err != nil {
		t.Fatalf("alice's key after the refusal: %v", err)
	}
	if _, err := h.client.RevokeAPIKey(ctx, alice.ID); err != nil {
		t.Fatalf("the controller key revokes the last key: %v", err)
	}
	wantCode(t, second(asAlice.Apps(ctx)), httpjson.CodeUnauthorized, "")
	if _, err := h.client.Apps(ctx); err != nil {
		t.Fatalf("the controller key with no API keys left: %v", err)
	}
}

// TestRevocationReachesOtherControllers: a controller that cached a key
// stops accepting it once another controller on the same database has
// revoked it.
func TestRevocationReachesOtherControllers(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	other, err := New(h.store, Options{AuthKey: testKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(other)
	t.Cleanup(func() {
		hs.Close()
		other.Close()
	})
	_, k := h.person(t, "carol")
	viaOther := client.New(hs.URL, k.Secret)
	poll.Until(t, 10*time.Second, "the other controller caches carol's key", func() bool {
		_, err := viaOther.Apps(ctx)
		return err == nil && other.keys.get(hashSecret(k.Secret)) != nil
	})
	if _, err := h.client.RevokeAPIKey(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "the other controller refuses the revoked key", func() bool {
		return httpjson.IsCode(second(viaOther.Apps(ctx)), httpjson.CodeUnauthorized)
	})
}

func TestKeyCache(t *testing.T) {
	now := time.Unix(0, 0)
	c := newKeyCache(time.Minute)
	c.now = func() time.Time { return now }
	k := &controller.APIKey{ID: "k1", Name: "alice"}
	h := hashSecret("s3cret")

	c.put(c.generation(), h, k)
	if c.get(h) != nil {
		t.Fatal("cached a key while revocations are not followed")
	}
	c.reset(true)
	c.put(c.generation(), h, k)
	if c.get(h) != k {
		t.Fatal("a key put is not found")
	}
	if c.get(hashSecret("other")) != nil {
		t.Fatal("another secret finds the key")
	}
	now = now.Add(61 * time.Second)
	if c.get(h) != nil {
		t.Fatal("an expired entry is still trusted")
	}

	// A lookup that began before a revocation must not cache what it read.
	gen := c.generation()
	c.forget("k1")
	c.put(gen, h, k)
	if c.get(h) != nil {
		t.Fatal("a lookup from before the revocation was cached")
	}
	c.put(c.generation(), h, k)
	c.forget("k1")
	if c.get(h) != nil {
		t.Fatal("a forgotten key is still cached")
	}
	c.put(c.generation(), h, k)
	c.reset(false)
	if c.get(h) != nil {
		t.Fatal("reset kept a key")
	}
}

func TestIdentify(t *testing.T) {
	h := newHarness(t)
	_, k := h.person(t, "dana")
	tests := []struct {
		name, key string
		want      caller
		wantErr   bool
	}{
		{"controller key", testKey, caller{system: true}, false},
		{"API key", k.Secret, caller{key: &controller.APIKey{ID: k.ID, Name: "dana", CreatedAt: k.CreatedAt}}, false},
		{"neither", "guess", caller{}, true},
		{"none", "", caller{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/apps", nil)
			if tt.key != "" {
				r.SetBasicAuth("", tt.key)
			}
			got, err := h.server.identify(r)
			if (err != nil) != tt.wantErr {
				t.Fatalf("identify: %v, want error %v", err, tt.wantErr)
			}
			if got.system != tt.want.system || (got.key == nil) != (tt.want.key == nil) ||
				got.key != nil && (got.key.ID != tt.want.key.ID || got.key.Name != tt.want.key.Name) {
				gotJSON, _ := json.Marshal(got.key)
				t.Fatalf("caller = system %v key %s, want %+v", got.system, gotJSON, tt.want)
			}
		})
	}
}

// TestReleaseCreator: a release names the person whose key made it (the
// dashboard's "who"), whether made whole or by a patch; the system's
// releases name nobody, a name a client sends is replaced, and a patch
// that changes nothing makes no release whoever asks.
func TestReleaseCreator(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	bob, _ := h.person(t, "bob")
	app := &controller.App{Name: "creator"}
	if err := bob.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	art := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "example/app:1"}
	if err := h.client.CreateArtifact(ctx, art); err != nil {
		t.Fatal(err)
	}
	forged := &controller.Release{AppID: app.ID, ArtifactID: art.ID, Meta: map[string]string{controller.ReleaseMetaCreatedBy: "mallory", "note": "kept"}}
	if err := bob.CreateRelease(ctx, forged); err != nil {
		t.Fatal(err)
	}
	if got := forged.Meta; got[controller.ReleaseMetaCreatedBy] != "bob" || got["note"] != "kept" {
		t.Errorf("bob's release meta = %v, want created_by bob and the note kept", got)
	}
	patch := func(c *client.Client, env map[string]string) *controller.PatchedRelease {
		t.Helper()
		out, err := c.PatchRelease(ctx, app.ID, controller.ReleasePatch{Env: &controller.EnvPatch{Set: env}})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := patch(bob, map[string]string{"A": "1"})
	if out.Release == nil || out.Release.Meta[controller.ReleaseMetaCreatedBy] != "bob" {
		t.Fatalf("bob's patch made %+v, want a release by bob", out.Release)
	}
	sys := patch(h.client, map[string]string{"A": "2"})
	if sys.Release == nil || sys.Release.Meta[controller.ReleaseMetaCreatedBy] != "" {
		t.Fatalf("the system's patch made %+v, want a release by nobody", sys.Release)
	}
	if again := patch(bob, map[string]string{"A": "2"}); again.Deployment != nil || again.Release.ID != sys.Release.ID {
		t.Errorf("a patch that changes nothing made release %+v", again.Release)
	}
}
