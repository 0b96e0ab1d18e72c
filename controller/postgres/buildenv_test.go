package postgres

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
)

// testCA returns a self-signed CA certificate in PEM.
func testCA(t *testing.T, name string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func ptr[T any](v T) *T { return &v }

// TestPatchBuildEnv checks what a patch makes of the settings, and what it
// refuses, without a database.
func TestPatchBuildEnv(t *testing.T) {
	ca1, ca2 := testCA(t, "one"), testCA(t, "two")
	old := &controller.BuildEnv{Env: map[string]string{"GOPROXY": "https://proxy.test", "KEEP": "x"}, CACerts: ca1}
	tests := []struct {
		name      string
		patch     controller.BuildEnvPatch
		wantEnv   map[string]string
		wantCerts string
		wantField string // non-empty: refused (ErrInvalid) on this field; "-": on no field
		wantMsg   string
	}{
		{name: "nothing", wantEnv: old.Env, wantCerts: ca1},
		{
			name:    "set and unset",
			patch:   controller.BuildEnvPatch{Env: &controller.EnvPatch{Set: map[string]string{"npm_config_registry": "https://npm.test"}, Unset: []string{"GOPROXY", "MISSING"}}},
			wantEnv: map[string]string{"KEEP": "x", "npm_config_registry": "https://npm.test"}, wantCerts: ca1,
		},
		{name: "a bundle with comments", patch: controller.BuildEnvPatch{CACerts: ptr("# one\n" + ca1 + "\n# two\n" + ca2 + "\n")}, wantEnv: old.Env, wantCerts: "# one\n" + ca1 + "\n# two\n" + ca2 + "\n"},
		{name: "certificates removed", patch: controller.BuildEnvPatch{CACerts: ptr("")}, wantEnv: old.Env},
		{name: "bad name", patch: controller.BuildEnvPatch{Env: &controller.EnvPatch{Set: map[string]string{"MY-VAR": "x"}}}, wantField: "env.set", wantMsg: "invalid variable name"},
		{name: "set and unset at once", patch: controller.BuildEnvPatch{Env: &controller.EnvPatch{Set: map[string]string{"A": "x"}, Unset: []string{"B", "A"}}}, wantField: "env.unset.1"},
		{name: "the certificates' variable", patch: controller.BuildEnvPatch{Env: &controller.EnvPatch{Set: map[string]string{controller.CACertsEnv: ca2}}}, wantField: "env.set", wantMsg: "ca_certs"},
		{name: "NUL in a value", patch: controller.BuildEnvPatch{Env: &controller.EnvPatch{Set: map[string]string{"A": "x\x00y"}}}, wantField: "env.set", wantMsg: "NUL"},
		{name: "not PEM", patch: controller.BuildEnvPatch{CACerts: ptr("not a certificate")}, wantField: "ca_certs", wantMsg: "no PEM certificate"},
		{name: "a key", patch: controller.BuildEnvPatch{CACerts: ptr(ca1 + "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}, wantField: "ca_certs", wantMsg: "PRIVATE KEY"},
		{name: "a certificate that does not parse", patch: controller.BuildEnvPatch{CACerts: ptr("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}, wantField: "ca_certs", wantMsg: "does not parse"},
		{name: "a certificate cut short", patch: controller.BuildEnvPatch{CACerts: ptr(ca1 + ca2[:len(ca2)/2])}, wantField: "ca_certs", wantMsg: "cut short"},
		{name: "too big", patch: controller.BuildEnvPatch{Env: &controller.EnvPatch{Set: map[string]string{"BIG": strings.Repeat("x", MaxBuildEnvBytes)}}}, wantField: "-", wantMsg: "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := patchBuildEnv(old, tt.patch)
			if tt.wantField != "" {
				var e *Error
				if !errors.Is(err, ErrInvalid) || !errors.As(err, &e) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				if field := strings.TrimPrefix(tt.wantField, "-"); e.Field != field || !strings.Contains(e.Message, tt.wantMsg) {
					t.Fatalf("err = %q on %q, want one on %q saying %q", e.Message, e.Field, field, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got.Env, tt.wantEnv) || got.CACerts != tt.wantCerts {
				t.Errorf("patched = %v, certs %q; want %v, certs %q", got.Env, got.CACerts, tt.wantEnv, tt.wantCerts)
			}
		})
	}
	if old.Env["GOPROXY"] == "" || len(old.Env) != 2 {
		t.Errorf("a patch changed the settings it started from: %v", old.Env)
	}
}

// TestBuildEnvRoundTrip: the settings start empty, a patch is read back,
// its event names the variables without their values, and a patch that
// changes nothing writes nothing.
func TestBuildEnvRoundTrip(t *testing.T) {
	store := newStore(t)
	ctx := t.Context()
	be, err := store.BuildEnv.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(be.Env) != 0 || be.CACerts != "" || !be.UpdatedAt.IsZero() {
		t.Fatalf("fresh settings = %+v, want none", be)
	}
	ca := testCA(t, "mirror")
	patched, err := store.BuildEnv.Patch(ctx, controller.BuildEnvPatch{
		Env:     &controller.EnvPatch{Set: map[string]string{"GOPROXY": "https://user:secret@proxy.test"}},
		CACerts: &ca,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.BuildEnv.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Env["GOPROXY"] != "https://user:secret@proxy.test" || got.CACerts != ca || got.UpdatedAt.IsZero() || !got.UpdatedAt.Equal(patched.UpdatedAt) {
		t.Fatalf("read back %+v, want what the patch answered (%+v)", got, patched)
	}

	events, err := store.Events.List(ctx, EventQuery{ObjectTypes: []string{controller.ObjectTypeBuildEnv}})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].AppID != "" || events[0].ObjectID != controller.BuildEnvObjectID || events[0].Op != controller.OpUpdate {
		t.Fatalf("events = %+v, want one update of %s", events, controller.BuildEnvObjectID)
	}
	var data controller.BuildEnv
	if err := json.Unmarshal(events[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.Env["GOPROXY"] != controller.RedactedValue || data.CACerts != ca {
		t.Errorf("event data = %+v, want GOPROXY redacted and the certificates", data)
	}
	if found := secretsIn(t, store.Pool, "secret@proxy"); len(found) > 0 {
		t.Errorf("the event log holds a build env value: %v", found)
	}

	same, err := store.BuildEnv.Patch(ctx, controller.BuildEnvPatch{Env: &controller.EnvPatch{Set: map[string]string{"GOPROXY": "https://user:secret@proxy.test"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !same.UpdatedAt.Equal(patched.UpdatedAt) {
		t.Errorf("a patch that changes nothing moved updated_at from %s to %s", patched.UpdatedAt, same.UpdatedAt)
	}
	if events, _ := store.Events.List(ctx, EventQuery{ObjectTypes: []string{controller.ObjectTypeBuildEnv}}); len(events) != 1 {
		t.Errorf("%d build env events after a patch that changes nothing, want still 1", len(events))
	}
	if _, err := store.BuildEnv.Patch(ctx, controller.BuildEnvPatch{CACerts: ptr("nope")}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad certificates: err = %v, want ErrInvalid", err)
	}
	if got, _ := store.BuildEnv.Get(ctx); got.CACerts != ca {
		t.Error("a refused patch changed the settings")
	}
}
