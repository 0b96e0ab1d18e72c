package server

import (
	"crypto/tls"
	"net"
	pathpkg "path"
	"sort"
	"strings"

	"github.com/openflynn/flynn/controller"
)

// table is an immutable snapshot of every route, built whenever a route
// changes and swapped in with one atomic store, so the request path looks
// routes up without locks.
type table struct {
	// exact maps a lower-case host to its routes, longest path first.
	exact map[string][]*routeEntry
	// wildcard maps the suffix of "*.example.com" ("example.com") to its
	// routes, longest path first.
	wildcard map[string][]*routeEntry
	// tcp maps a listening port to its route.
	tcp map[int]*routeEntry
	// certs maps a lower-case domain (wildcards as "*.example.com") to the
	// certificate of its route.
	certs map[string]*tls.Certificate
	// all is every route, for metrics.
	all []*routeEntry
}

// listener kinds: how a client reached the router, which the backend is
// told (X-Forwarded-Proto and -Port).
const (
	kindHTTP = iota
	kindHTTPS
)

// routeEntry is a route as the request path needs it.
type routeEntry struct {
	route *controller.Route
	// path is route.Path, resolved as request paths are (resolvePath),
	// with the default applied.
	path    string
	pool    *pool
	metrics *routeMetrics
	// stickyCookie is the cookie name of a sticky route.
	stickyCookie string
}

func newTable() *table {
	return &table{
		exact:    map[string][]*routeEntry{},
		wildcard: map[string][]*routeEntry{},
		tcp:      map[int]*routeEntry{},
		certs:    map[string]*tls.Certificate{},
	}
}

// add puts an http or tcp entry into the table; callers sort afterwards.
func (t *table) add(e *routeEntry, cert *tls.Certificate) {
	t.all = append(t.all, e)
	r := e.route
	if r.Type == controller.RouteTypeTCP {
		t.tcp[r.Port] = e
		return
	}
	domain := asciiLower(r.Domain)
	if suffix, ok := strings.CutPrefix(domain, "*."); ok {
		t.wildcard[suffix] = append(t.wildcard[suffix], e)
	} else {
		t.exact[domain] = append(t.exact[domain], e)
	}
	if cert != nil {
		t.certs[domain] = cert
	}
}

// sort orders every host's routes longest path first, ties by route id so
// the result does not depend on map order.
func (t *table) sort() {
	for _, m := range []map[string][]*routeEntry{t.exact, t.wildcard} {
		for _, entries := range m {
			sort.Slice(entries, func(i, j int) bool {
				if len(entries[i].path) != len(entries[j].path) {
					return len(entries[i].path) > len(entries[j].path)
				}
				return entries[i].route.ID < entries[j].route.ID
			})
		}
	}
}

// lookup finds the route for a request's Host header and path: an exact
// host before wildcards, the most specific wildcard first, and within a host
// the longest matching path prefix. A host with an empty label matches
// nothing: no route can own "a..example.com" or ".example.com".
//
// The path is matched as the backend will read it, with "." and ".."
// segments resolved and repeated slashes folded: otherwise "/x/../admin"
// would pass a route for "/admin" by and reach the app behind "/", which
// would serve it as "/admin".
func (t *table) lookup(host, path string) *routeEntry {
	host = normalizeHost(host)
	if !validLabels(host) {
		return nil
	}
	path = resolvePath(path)
	if e := matchPath(t.exact[host], path); e != nil {
		return e
	}
	if len(t.wildcard) == 0 {
		return nil
	}
	for rest := host; ; {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			return nil
		}
		rest = rest[i+1:]
		if e := matchPath(t.wildcard[rest], path); e != nil {
			return e
		}
	}
}

// certificate returns the certificate for a TLS server name, or nil.
func (t *table) certificate(name string) *tls.Certificate {
	name = normalizeHost(name)
	if c := t.certs[name]; c != nil {
		return c
	}
	for rest := name; ; {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			return nil
		}
		rest = rest[i+1:]
		if c := t.certs["*."+rest]; c != nil {
			return c
		}
	}
}

func matchPath(entries []*routeEntry, path string) *routeEntry {
	for _, e := range entries {
		if pathHasPrefix(path, e.path) {
			return e
		}
	}
	return nil
}

// pathHasPrefix reports whether prefix covers path in whole segments.
func pathHasPrefix(path, prefix string) bool {
	if prefix == "/" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || prefix[len(prefix)-1] == '/' || path[len(prefix)] == '/'
}

// normalizeHost drops a port and a trailing dot and lower-cases the name
// (ASCII only: host names on the wire are ASCII, punycode for the rest, and
// Unicode case folding would make "\u212Aey.test", with a Kelvin sign, the
// same as "key.test").
func normalizeHost(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	return asciiLower(strings.TrimSuffix(host, "."))
}

// asciiLower lower-cases the ASCII letters of s, allocating only when there
// is one to change.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// validLabels reports whether a normalized host is non-empty and has no
// empty label (no leading dot, no "..", no second trailing dot).
func validLabels(host string) bool {
	return host != "" && host[0] != '.' && host[len(host)-1] != '.' && !strings.Contains(host, "..")
}

// resolvePath returns path with "." and ".." segments resolved and runs of
// slashes folded, keeping a trailing slash; paths that need none of it (the
// common case) are returned as they are, without allocating. Paths that do
// not start with a slash ("*" of OPTIONS) are left alone.
func resolvePath(p string) string {
	if !strings.HasPrefix(p, "/") || !needsResolving(p) {
		return p
	}
	c := pathpkg.Clean(p)
	if c != "/" && (strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")) {
		c += "/"
	}
	return c
}

func needsResolving(p string) bool {
	return strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") ||
		strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")
}
