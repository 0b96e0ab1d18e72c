package authkey

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRequire(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	tests := []struct {
		name      string
		serverKey string
		clientKey string
		want      int
	}{
		{"no key configured", "", "", http.StatusNoContent},
		{"right key", "s3cret", "s3cret", http.StatusNoContent},
		{"wrong key", "s3cret", "guess", http.StatusUnauthorized},
		{"missing key", "s3cret", "", http.StatusUnauthorized},
		{"prefix of key", "s3cret", "s3c", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			Set(r, tt.clientKey)
			w := httptest.NewRecorder()
			Require(tt.serverKey, ok).ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("status = %d, want %d", w.Code, tt.want)
			}
		})
	}
}
