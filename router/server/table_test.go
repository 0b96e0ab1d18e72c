package server

import (
	"testing"

	"github.com/openflynn/flynn/controller"
)

// tableOf is a table of routes, as the route follower builds one.
func tableOf(routes ...*controller.Route) *table {
	tb := newTable()
	for _, r := range routes {
		e := &routeEntry{route: r, path: resolvePath(r.Path)}
		if e.path == "" {
			e.path = "/"
		}
		tb.add(e, nil)
	}
	tb.sort()
	return tb
}

func TestTableLookup(t *testing.T) {
	tb := tableOf(
		&controller.Route{ID: "root", Type: "http", Domain: "example.com"},
		&controller.Route{ID: "api", Type: "http", Domain: "example.com", Path: "/api"},
		&controller.Route{ID: "apiv2", Type: "http", Domain: "example.com", Path: "/api/v2/"},
		&controller.Route{ID: "wild", Type: "http", Domain: "*.example.com"},
		&controller.Route{ID: "wildsub", Type: "http", Domain: "*.eu.example.com"},
		&controller.Route{ID: "wildpath", Type: "http", Domain: "*.example.com", Path: "/admin"},
		&controller.Route{ID: "mixed", Type: "http", Domain: "MiXed.Test"},
		&controller.Route{ID: "key", Type: "http", Domain: "key.test"},
		&controller.Route{ID: "unclean", Type: "http", Domain: "key.test", Path: "/a//b/./c"},
	)
	for _, tc := range []struct {
		name, host, path, want string
	}{
		{"exact root", "example.com", "/", "root"},
		{"exact other path", "example.com", "/index.html", "root"},
		{"prefix itself", "example.com", "/api", "api"},
		{"prefix subpath", "example.com", "/api/users", "api"},
		{"prefix is whole segments", "example.com", "/apis", "root"},
		{"longest prefix wins", "example.com", "/api/v2/x", "apiv2"},
		{"prefix with trailing slash needs it", "example.com", "/api/v2", "api"},
		{"port ignored", "example.com:8080", "/api", "api"},
		{"case ignored", "EXAMPLE.com", "/", "root"},
		{"trailing dot ignored", "example.com.", "/", "root"},
		{"wildcard", "app.example.com", "/", "wild"},
		{"wildcard deeper name", "a.b.example.com", "/", "wild"},
		{"most specific wildcard", "x.eu.example.com", "/", "wildsub"},
		{"wildcard longest path", "app.example.com", "/admin/x", "wildpath"},
		{"wildcard does not match its base", "example.org", "/", ""},
		{"no host", "other.test", "/", ""},
		{"empty host", "", "/", ""},
		{"mixed case route", "mixed.test", "/", "mixed"},
		{"ipv6 literal", "[::1]:80", "/", ""},
		// Paths are matched as the backend reads them.
		{"dot segments resolved into a prefix", "example.com", "/x/../api/users", "api"},
		{"dot segments resolved out of a prefix", "example.com", "/api/../index", "root"},
		{"dot segments above the root", "example.com", "/../../api", "api"},
		{"dot segment keeps the trailing slash", "example.com", "/api/v2/x/..", "apiv2"},
		{"single dot segment", "example.com", "/api/./v2/x", "apiv2"},
		{"repeated slashes folded", "example.com", "//api//v2//x", "apiv2"},
		{"dots inside a name are no segment", "example.com", "/api/..x", "api"},
		{"unclean route path", "key.test", "/a/b/c/d", "unclean"},
		{"OPTIONS *", "example.com", "*", "root"},
		// No route owns a name with an empty label.
		{"empty label", "a..example.com", "/", ""},
		{"leading dot", ".example.com", "/", ""},
		{"two trailing dots", "example.com..", "/", ""},
		{"only a dot", ".", "/", ""},
		// Case is folded in ASCII only: the Kelvin sign is not a K.
		{"ascii case", "KEY.TEST", "/", "key"},
		{"kelvin sign", "\u212AEY.TEST", "/", ""},
		{"kelvin sign lower", "\u212Aey.test", "/", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if e := tb.lookup(tc.host, tc.path); e != nil {
				got = e.route.ID
			}
			if got != tc.want {
				t.Errorf("lookup(%q, %q) = %q, want %q", tc.host, tc.path, got, tc.want)
			}
		})
	}
}

func TestValidateRoute(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route controller.Route
		ok    bool
	}{
		{"http", controller.Route{Type: "http", Service: "s", Domain: "a.test"}, true},
		{"wildcard", controller.Route{Type: "http", Service: "s", Domain: "*.a.test", Path: "/x"}, true},
		{"no service", controller.Route{Type: "http", Domain: "a.test"}, false},
		{"no domain", controller.Route{Type: "http", Service: "s"}, false},
		{"inner star", controller.Route{Type: "http", Service: "s", Domain: "a.*.test"}, false},
		{"relative path", controller.Route{Type: "http", Service: "s", Domain: "a.test", Path: "x"}, false},
		{"tcp", controller.Route{Type: "tcp", Service: "s", Port: 2222}, true},
		{"tcp bad port", controller.Route{Type: "tcp", Service: "s", Port: 70000}, false},
		{"unknown type", controller.Route{Type: "udp", Service: "s", Port: 53}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := validateRoute(&tc.route)
			if (err == nil) != tc.ok {
				t.Errorf("validateRoute(%+v) error = %v, want ok=%v", tc.route, err, tc.ok)
			}
		})
	}
}

// lookupTable is a table of a few routes of each kind, for the lookup's
// allocation check and benchmark.
func lookupTable() *table {
	return tableOf(
		&controller.Route{ID: "root", Type: "http", Domain: "example.com"},
		&controller.Route{ID: "api", Type: "http", Domain: "example.com", Path: "/api"},
		&controller.Route{ID: "wild", Type: "http", Domain: "*.example.com"},
		&controller.Route{ID: "wildpath", Type: "http", Domain: "*.example.com", Path: "/admin"},
	)
}

// TestTableLookupAllocatesNothing: every request looks its route up, so a
// hit must not allocate (a host with a port, a wildcard, a path prefix);
// only hosts with upper-case letters and paths that need resolving may.
func TestTableLookupAllocatesNothing(t *testing.T) {
	tb := lookupTable()
	for _, tc := range []struct{ host, path, want string }{
		{"example.com", "/index.html", "root"},
		{"example.com:8080", "/api/users?x=1", "api"},
		{"www.eu.example.com", "/admin/x", "wildpath"},
		{"www.example.com.", "/", "wild"},
	} {
		var got *routeEntry
		allocs := testing.AllocsPerRun(100, func() { got = tb.lookup(tc.host, tc.path) })
		if got == nil || got.route.ID != tc.want {
			t.Fatalf("lookup(%q, %q) = %v, want %s", tc.host, tc.path, got, tc.want)
		}
		if allocs != 0 {
			t.Errorf("lookup(%q, %q): %.1f allocations, want 0", tc.host, tc.path, allocs)
		}
	}
}

// BenchmarkTableLookup is the cost of finding a request's route.
func BenchmarkTableLookup(b *testing.B) {
	tb := lookupTable()
	b.ReportAllocs()
	for b.Loop() {
		if tb.lookup("www.example.com", "/admin/users") == nil {
			b.Fatal("no route")
		}
	}
}
