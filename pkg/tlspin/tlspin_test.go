package tlspin_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/openflynn/flynn/pkg/tlspin"
)

func TestPin(t *testing.T) {
	der := []byte("not really DER, but any bytes hash the same way")
	sum := sha256.Sum256(der)
	want := base64.StdEncoding.EncodeToString(sum[:])
	if got := tlspin.Pin(der); got != want {
		t.Fatalf("Pin = %q, want %q", got, want)
	}
	if got := tlspin.Pin(nil); got != "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" {
		t.Fatalf("Pin(nil) = %q, want the SHA-256 of nothing", got)
	}
}

func TestConfig(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(r.TLS.ServerName))
	}))
	defer srv.Close()
	good := tlspin.Pin(srv.Certificate().Raw)
	bad := tlspin.Pin([]byte("another certificate"))

	tests := []struct {
		name    string
		pin     string
		wantErr bool
	}{
		{"right pin", good, false},
		{"wrong pin", bad, true},
		{"empty pin", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlspin.Config(tt.pin, "controller.example.test")}}
			defer hc.CloseIdleConnections()
			resp, err := hc.Get(srv.URL)
			if tt.wantErr {
				var mismatch *tlspin.MismatchError
				if !errors.As(err, &mismatch) {
					t.Fatalf("err = %v, want a *MismatchError", err)
				}
				if mismatch.Got != good || mismatch.Want != tt.pin {
					t.Fatalf("mismatch = %+v, want got %s want %s", mismatch, good, tt.pin)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			buf := make([]byte, 64)
			n, _ := resp.Body.Read(buf)
			if got := string(buf[:n]); got != "controller.example.test" {
				t.Fatalf("server saw SNI %q, want controller.example.test", got)
			}
		})
	}
}
