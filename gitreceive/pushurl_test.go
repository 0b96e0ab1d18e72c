package gitreceive_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
)

// TestPushURL: a push ends with the URL of the app's first HTTP route,
// and with nothing more when the app has none.
func TestPushURL(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name   string
		routes func(app string) []*controller.Route
		want   string // "": no URL line
	}{
		{name: "no route"},
		{
			name: "tcp and wildcard routes only",
			routes: func(app string) []*controller.Route {
				return []*controller.Route{
					{Type: controller.RouteTypeTCP, Service: app + "-web"},
					{Type: controller.RouteTypeHTTP, Service: app + "-web", Domain: "*." + app + ".example.test"},
				}
			},
		},
		{
			name: "http",
			routes: func(app string) []*controller.Route {
				return []*controller.Route{
					{Type: controller.RouteTypeHTTP, Service: app + "-web", Domain: app + ".example.test"},
					{Type: controller.RouteTypeHTTP, Service: app + "-web", Domain: "www." + app + ".example.test"},
				}
			},
			want: "remote: =====> http://http.example.test/",
		},
		{
			name: "https",
			routes: func(app string) []*controller.Route {
				domain := app + ".example.test"
				return []*controller.Route{{Type: controller.RouteTypeHTTP, Service: app + "-web", Domain: domain, Path: "/shop/", Certificate: selfSignedCert(t, domain)}}
			},
			want: "remote: =====> https://https.example.test/shop/",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := strings.ReplaceAll(tt.name, " ", "-")
			app := h.createApp(name)
			if tt.routes != nil {
				for _, r := range tt.routes(name) {
					if err := h.client.CreateRoute(t.Context(), app.ID, r); err != nil {
						t.Fatal(err)
					}
				}
			}
			w := h.newWorkdir(name)
			w.commit("first", map[string]string{"Procfile": "web: ./web\n"})
			out := w.pushOK(t, "main")
			// The URL line follows the deployed line, which stays as it was.
			var got string
			lines := strings.Split(out, "\n")
			for i, l := range lines {
				if strings.TrimRight(l, " \r") == "remote: =====> Application deployed" && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "remote: =====> ") {
					got = strings.TrimRight(lines[i+1], " \r")
				}
			}
			if got != tt.want {
				t.Fatalf("URL line = %q, want %q:\n%s", got, tt.want, out)
			}
		})
	}
}

func selfSignedCert(t *testing.T, domain string) *controller.Certificate {
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
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &controller.Certificate{
		Cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Key:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})),
	}
}
