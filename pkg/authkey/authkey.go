// Package authkey guards internal HTTP APIs with the cluster key. Clients
// send the key as the HTTP basic-auth password (any user name), the way
// Flynn's controller always took it; the comparison is constant-time.
package authkey

import (
	"crypto/subtle"
	"net/http"

	"github.com/openflynn/flynn/pkg/httpjson"
)

// Valid reports whether r carries key. An empty key admits every request:
// servers built in tests run so, and a daemon does only when started with
// --insecure, since its command reads the key with cmdline.RequiredKey.
func Valid(r *http.Request, key string) bool {
	if key == "" {
		return true
	}
	_, pass, ok := r.BasicAuth()
	return ok && subtle.ConstantTimeCompare([]byte(pass), []byte(key)) == 1
}

// Require wraps next so that requests without key get a 401 JSON error.
func Require(key string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Valid(r, key) {
			w.Header().Set("WWW-Authenticate", `Basic realm="flynn"`)
			httpjson.WriteError(w, httpjson.Errorf(httpjson.CodeUnauthorized, "missing or wrong cluster key"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Set adds key to an outgoing request; an empty key leaves it untouched.
func Set(r *http.Request, key string) {
	if key != "" {
		r.SetBasicAuth("", key)
	}
}
