package server

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// stickyCookieName is the cookie of one sticky route. It carries the route's
// id so that two sticky routes on nested paths of one host do not overwrite
// each other's choice.
func stickyCookieName(routeID string) string {
	var b strings.Builder
	b.WriteString("_flynn_sticky_")
	for _, c := range routeID {
		if c < 128 && (c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// stickyBackend returns the backend a request's sticky cookie names, when that
// backend is still live and usable, or nil.
func stickyBackend(req *http.Request, e *routeEntry, tried []*backend) *backend {
	c, err := req.Cookie(e.stickyCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	return backendByToken(e, c.Value, tried)
}

// backendByToken returns the live backend of e's pool whose sticky token
// is token, unless it was tried already, or nil.
func backendByToken(e *routeEntry, token string, tried []*backend) *backend {
	for _, b := range e.pool.list() {
		if subtle.ConstantTimeCompare([]byte(b.stickyToken), []byte(token)) == 1 {
			if contains(tried, b) {
				return nil
			}
			return b
		}
	}
	return nil
}

// setStickyCookie pins the client to b for this route.
func setStickyCookie(h http.Header, e *routeEntry, b *backend) {
	h.Add("Set-Cookie", stickyCookie(e, b).String())
}

// stickyCookie is the cookie that pins a client to b for route e.
func stickyCookie(e *routeEntry, b *backend) *http.Cookie {
	return &http.Cookie{
		Name:     e.stickyCookie,
		Value:    b.stickyToken,
		Path:     e.path,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}
