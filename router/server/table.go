package server

import (
	"crypto/tls"
	"net"
	"net/http/httputil"
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

// listener kinds, indexing routeEntry.proxies.
const (
	kindHTTP = iota
	kindHTTPS
	numKinds
)

// routeEntry is a route as the request path needs it.
type routeEntry struct {
	route *controller.Route
	// path is route.Path with the default applied.
	path string
	pool *pool
	// proxies has one reverse proxy per listener kind, so that the
	// X-Forwarded-Proto and -Port values are constants of the proxy rather
	// than computed per request.
	proxies [numKinds]*httputil.ReverseProxy
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
	domain := strings.ToLower(r.Domain)
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
// the longest matching path prefix.
func (t *table) lookup(host, path string) *routeEntry {
	host = normalizeHost(host)
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

// normalizeHost drops a port and a trailing dot and lower-cases the name,
// allocating only when the name is not already lower-case.
func normalizeHost(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}
