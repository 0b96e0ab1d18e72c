package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
)

// writeCert writes a self-signed certificate for domain and its key as PEM
// files.
func writeCert(t *testing.T, dir, domain string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestRoutes(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	h.deploy(app, nil)
	certFile, keyFile := writeCert(t, t.TempDir(), "secure.example.test")

	out := h.ok("-a", "example", "route", "add", "http", "example.example.test")
	if !strings.HasPrefix(out, "Created route ") || !strings.HasSuffix(out, ": example.example.test (http) → example-web\n") {
		t.Fatalf("route add http printed %q", out)
	}
	h.ok("-a", "example", "route", "add", "http", "secure.example.test", "--path", "/api", "--sticky", "--tls-cert", certFile, "--tls-key", keyFile)
	h.ok("-a", "example", "route", "add", "tcp", "--port", "3345", "--service", "example-db")
	if out := h.ok("-a", "example", "route", "add", "tcp", "--service", "example-cache"); !strings.HasSuffix(out, ": :3000 (tcp) → example-cache\n") {
		t.Fatalf("route add tcp without a port printed %q, want the port the controller picked", out)
	}
	h.fails("port: a TCP route of an app must use a router port from 3000 to 3999", "-a", "example", "route", "add", "tcp", "--port", "2345")
	h.fails("--port must be a port number", "-a", "example", "route", "add", "tcp", "--port", "0")
	h.fails("go together", "-a", "example", "route", "add", "http", "x.example.test", "--tls-cert", certFile)
	h.fails("domain", "-a", "example", "route", "add", "http", "not a domain")

	out = squash(h.ok("-a", "example", "route", "list"))
	for _, want := range []string{" http example.example.test example-web -\n", " http secure.example.test/api example-web sticky,tls\n", " tcp :3345 example-db -\n", " tcp :3000 example-cache -\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("route list lacks %q:\n%s", want, out)
		}
	}
	var routes []*controller.Route
	if err := json.Unmarshal([]byte(h.ok("-a", "example", "route", "--json")), &routes); err != nil || len(routes) != 4 {
		t.Fatalf("route --json: %d routes, %v", len(routes), err)
	}
	for _, r := range routes {
		if r.Domain == "secure.example.test" && (r.Certificate == nil || !r.Sticky || r.Path != "/api") {
			t.Fatalf("secure route = %+v, want certificate, sticky and /api", r)
		}
	}
	h.ok("-a", "example", "route", "remove", routes[0].ID)
	got, err := h.api.AppRoutes(context.Background(), app.ID)
	if err != nil || len(got) != 3 {
		t.Fatalf("after remove: %d routes, %v; want 3", len(got), err)
	}
	h.fails("not found", "-a", "example", "route", "remove", routes[0].ID)
}

// TestRouteRequestLog: --no-request-log of route add, and route update
// --request-log, set the route's NoRequestLog; route list shows it.
func TestRouteRequestLog(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	h.deploy(app, nil)

	h.ok("-a", "example", "route", "add", "http", "busy.example.test", "--no-request-log")
	h.ok("-a", "example", "route", "add", "tcp", "--port", "3346", "--service", "example-db", "--no-request-log")
	h.ok("-a", "example", "route", "add", "http", "quiet.example.test")
	routes, err := h.api.AppRoutes(context.Background(), app.ID)
	if err != nil || len(routes) != 3 {
		t.Fatalf("routes = %v, %v; want 3", routes, err)
	}
	byTarget := map[string]*controller.Route{}
	for _, r := range routes {
		byTarget[r.Domain+":"+strconv.Itoa(r.Port)] = r
	}
	busy, db, quiet := byTarget["busy.example.test:0"], byTarget[":3346"], byTarget["quiet.example.test:0"]
	if busy == nil || db == nil || quiet == nil || !busy.NoRequestLog || !db.NoRequestLog || quiet.NoRequestLog {
		t.Fatalf("routes = %+v, want busy and the tcp route without request lines, quiet with them", byTarget)
	}
	if out := squash(h.ok("-a", "example", "route", "list")); !strings.Contains(out, " http busy.example.test example-web no-request-log\n") {
		t.Errorf("route list lacks busy's no-request-log:\n%s", out)
	}

	tests := []struct {
		name string
		args []string
		want string // printed
		off  bool   // the route's NoRequestLog after it
	}{
		{"turn them off", []string{"--request-log=false"}, "Updated route " + quiet.ID + ": quiet.example.test (http), request log off.\n", true},
		{"turn them on", []string{"--request-log=true"}, "Updated route " + quiet.ID + ": quiet.example.test (http), request log on.\n", false},
		{"the flag alone is on", []string{"--request-log"}, "Updated route " + quiet.ID + ": quiet.example.test (http), request log on.\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-a", "example", "route", "update", quiet.ID}, tt.args...)
			if out := h.ok(args...); out != tt.want {
				t.Errorf("printed %q, want %q", out, tt.want)
			}
			got, err := h.api.Route(context.Background(), app.ID, quiet.ID)
			if err != nil || got.NoRequestLog != tt.off {
				t.Errorf("route = %+v, %v; want NoRequestLog %v", got, err, tt.off)
			}
		})
	}
	h.fails("nothing to change", "-a", "example", "route", "update", quiet.ID)
	h.fails("want a route ID", "-a", "example", "route", "update", "--request-log=false")
	h.fails("not found", "-a", "example", "route", "update", "7f9c24e5-0000-4000-8000-000000000000", "--request-log=false")
}
