package server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	pathpkg "path"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"golang.org/x/net/http/httpguts"

	"github.com/openflynn/flynn/controller"
)

// fuzzRoutes are the routes FuzzRouteLookup looks hosts and paths up in:
// exact and wildcard hosts, nested wildcards, path prefixes with and
// without a trailing slash, a route path that needs resolving.
func fuzzRoutes() []*controller.Route {
	return []*controller.Route{
		{ID: "root", Type: "http", Domain: "example.com"},
		{ID: "api", Type: "http", Domain: "example.com", Path: "/api"},
		{ID: "apiv2", Type: "http", Domain: "example.com", Path: "/api/v2/"},
		{ID: "admin", Type: "http", Domain: "example.com", Path: "/admin"},
		{ID: "wild", Type: "http", Domain: "*.example.com"},
		{ID: "wildsub", Type: "http", Domain: "*.eu.example.com"},
		{ID: "wildpath", Type: "http", Domain: "*.example.com", Path: "/admin"},
		{ID: "mixed", Type: "http", Domain: "MiXed.Test"},
		{ID: "key", Type: "http", Domain: "key.test"},
		{ID: "unclean", Type: "http", Domain: "key.test", Path: "/a//b/./c"},
		{ID: "puny", Type: "http", Domain: "xn--bcher-kva.example"},
		{ID: "single", Type: "http", Domain: "localhost"},
	}
}

// FuzzRouteLookup checks the route table against a slow reference that
// reads every route: the same route for every Host and path, a path and its
// resolved form go to the same route, and a found route owns the host.
func FuzzRouteLookup(f *testing.F) {
	tb := newTable()
	var entries []*routeEntry
	for _, r := range fuzzRoutes() {
		if _, err := validateRoute(&controller.Route{Type: r.Type, Domain: r.Domain, Path: r.Path, Service: "s"}); err != nil {
			f.Fatalf("fuzz route %s: %v", r.ID, err)
		}
		e := &routeEntry{route: r, path: resolvePath(r.Path)}
		if e.path == "" {
			e.path = "/"
		}
		tb.add(e, nil)
		entries = append(entries, e)
	}
	tb.sort()

	for _, seed := range []struct{ host, path string }{
		{"example.com", "/"},
		{"example.com:8080", "/api/users"},
		{"EXAMPLE.COM.", "/api/v2/x"},
		{"app.example.com", "/admin/x"},
		{"x.eu.example.com", "/"},
		{"a..example.com", "/"},
		{".example.com", "/"},
		{"example.com..", "/"},
		{"example.com", "/x/../admin"},
		{"example.com", "/api/../admin/"},
		{"example.com", "//admin"},
		{"example.com", "/api/v2/."},
		{"example.com", "/api/%2e%2e/admin"},
		{"example.com", "*"},
		{"example.com", ""},
		{"key.test", "/a/b/c/../c/d"},
		{"\u212Aey.test", "/"},
		{"[::1]:80", "/"},
		{"[::1]", "/"},
		{"example.com:80:80", "/"},
		{"xn--bcher-kva.example", "/"},
		{"LOCALHOST:3000", "/"},
		{"", "/"},
	} {
		f.Add(seed.host, seed.path)
	}
	f.Fuzz(func(t *testing.T, host, path string) {
		got := idOf(tb.lookup(host, path))
		if want := idOf(referenceLookup(entries, host, path)); got != want {
			t.Fatalf("lookup(%q, %q) = %q, reference says %q", host, path, got, want)
		}
		if strings.HasPrefix(path, "/") {
			if again := idOf(tb.lookup(host, resolvePath(path))); again != got {
				t.Fatalf("lookup(%q, %q) = %q, but its resolved path %q gives %q", host, path, got, resolvePath(path), again)
			}
		}
		if r := resolvePath(path); resolvePath(r) != r {
			t.Fatalf("resolvePath(%q) = %q, which resolves again to %q", path, r, resolvePath(r))
		}
		h := normalizeHost(host)
		if strings.IndexFunc(h, func(c rune) bool { return 'A' <= c && c <= 'Z' }) >= 0 {
			t.Fatalf("normalizeHost(%q) = %q keeps upper case", host, h)
		}
		_ = tb.certificate(host)
	})
}

func idOf(e *routeEntry) string {
	if e == nil {
		return ""
	}
	return e.route.ID
}

// referenceLookup is what table.lookup must do, the slow way: it reads
// every route, and ranks the ones that match.
func referenceLookup(entries []*routeEntry, host, path string) *routeEntry {
	h := host
	if !strings.HasSuffix(h, "]") {
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
	}
	h = strings.TrimSuffix(h, ".")
	h = strings.Map(func(c rune) rune {
		if 'A' <= c && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}, h)
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return nil
		}
	}
	p := path
	if strings.HasPrefix(p, "/") {
		p = pathpkg.Clean(p)
		if p != "/" && (strings.HasSuffix(path, "/") || strings.HasSuffix(path, "/.") || strings.HasSuffix(path, "/..")) {
			p += "/"
		}
	}
	var best *routeEntry
	bestHost := -1
	for _, e := range entries {
		d := strings.ToLower(e.route.Domain) // the test's domains are ASCII
		hostRank := -1
		if suffix, ok := strings.CutPrefix(d, "*."); ok {
			if strings.HasSuffix(h, "."+suffix) {
				hostRank = len(suffix)
			}
		} else if h == d {
			hostRank = 1 << 20
		}
		if hostRank < 0 {
			continue
		}
		rp := e.path
		if !(rp == "/" || p == rp || strings.HasPrefix(p, rp) && (strings.HasSuffix(rp, "/") || p[len(rp)] == '/')) {
			continue
		}
		switch {
		case best == nil, hostRank > bestHost,
			hostRank == bestHost && len(rp) > len(best.path),
			hostRank == bestHost && len(rp) == len(best.path) && e.route.ID < best.route.ID:
			best, bestHost = e, hostRank
		}
	}
	return best
}

// FuzzForwardedHeaders sends requests with whatever headers a client may
// send through the reverse proxy the router builds, and checks what the
// backend would get: X-Forwarded-Proto and -Port are the router's alone,
// X-Forwarded-For ends with the client's address, no other header claims
// how the client came (in any spelling a CGI server merges), the request
// id is sane, and every header is still valid on the wire.
func FuzzForwardedHeaders(f *testing.F) {
	for _, seed := range []struct {
		headers, ip string
		https       bool
	}{
		{"", "127.0.0.1", false},
		{"X-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n", "10.0.0.1", false},
		{"X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n", "2001:db8::1", true},
		{"X-Forwarded-Ssl: on\r\nFront-End-Https: on\r\nX-Url-Scheme: https\r\n", "192.0.2.7", false},
		{"X_Forwarded_Proto: https\r\nx_forwarded_for: 9.9.9.9\r\nX-Forwarded_Port: 1\r\n", "192.0.2.7", false},
		{"Forwarded: for=1.2.3.4;proto=https\r\nX-Forwarded-Host: evil.test\r\n", "192.0.2.7", false},
		{"X-Request-Id: client-request-id-0123\r\n", "192.0.2.7", true},
		{"X-Request-Id: a\r\nX-Request-Id: client-request-id-0123\r\n", "192.0.2.7", true},
		{"Connection: X-Forwarded-For\r\nX-Forwarded-For: 1.1.1.1\r\n", "192.0.2.7", false},
		{"Connection: X-Forwarded-Proto, Upgrade\r\nUpgrade: websocket\r\n", "192.0.2.7", false},
		{"X-Forwarded-For: \r\n", "::ffff:10.0.0.1", false},
	} {
		f.Add(seed.headers, seed.ip, seed.https)
	}
	f.Fuzz(func(t *testing.T, headers, ip string, https bool) {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET /p HTTP/1.1\r\nHost: h.test\r\n" + headers + "\r\n")))
		if err != nil || !serverAccepts(req) {
			return
		}
		addr, err := netip.ParseAddr(ip)
		if err != nil || addr.Zone() != "" {
			// A TCP peer's address has no zone.
			addr = netip.MustParseAddr("192.0.2.1")
		}
		req.RemoteAddr = netip.AddrPortFrom(addr, 40000).String()
		proto, port := "http", "80"
		if https {
			proto, port = "https", "443"
		}
		inFor := req.Header["X-Forwarded-For"]
		inID := req.Header["X-Request-Id"]

		var out http.Header
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) { rewrite(pr, proto, port) },
			Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				out = r.Header.Clone()
				return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
			}),
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				// An upgrade to a protocol that is no token is refused,
				// which is as well.
				if !strings.Contains(err.Error(), "switch to invalid protocol") {
					t.Fatalf("proxy error: %v", err)
				}
			},
		}
		rp.ServeHTTP(httptest.NewRecorder(), req.WithContext(context.Background()))
		if out != nil {
			checkForwarded(t, "net/http", out, inFor, inID, addr.String(), proto, port)
		}

		// The fasthttp engine writes the backend's request itself: the
		// same request must reach the backend with the same headers.
		var fr fasthttp.Request
		if err := fr.Header.Read(bufio.NewReader(strings.NewReader("GET /p HTTP/1.1\r\nHost: h.test\r\n" + headers + "\r\n"))); err != nil {
			return
		}
		if string(fr.Header.Host()) != "h.test" {
			// fasthttp unfolds a continuation line into the Host header
			// (RFC 9112 §5.2 lets it): no route matches such a host.
			return
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&fr, net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr, 40000)), nil)
		r := &Router{httpPort: "80", httpsPort: "443"}
		x := r.newFastExchange()
		kind := kindHTTP
		if https {
			kind = kindHTTPS
		}
		x.begin(&ctx, &routeEntry{route: &controller.Route{}}, kind, time.Now())
		x.readHeaders()
		var sent bytes.Buffer
		bw := bufio.NewWriter(&sent)
		x.writeHead(bw, 0)
		bw.Flush()
		fastOut, err := http.ReadRequest(bufio.NewReader(&sent))
		if err != nil {
			t.Fatalf("the fasthttp engine sent a request the backend cannot read: %v\n%s", err, sent.Bytes())
		}
		if fastOut.Host != "h.test" || fastOut.RequestURI != "/p" {
			t.Errorf("fasthttp engine sent Host %q, target %q", fastOut.Host, fastOut.RequestURI)
		}
		// A listener's IPv4 client comes as 4 bytes, which net/http's
		// RemoteAddr prints as such too; only this test makes a mapped one.
		checkForwarded(t, "fasthttp", fastOut.Header, inFor, inID, addr.Unmap().String(), proto, port)
	})
}

// checkForwarded checks the headers an engine sent the backend (out) for
// a client at ip that sent X-Forwarded-For inFor and X-Request-Id inID.
func checkForwarded(t *testing.T, engine string, out http.Header, inFor, inID []string, ip, proto, port string) {
	t.Helper()
	if got := out["X-Forwarded-Proto"]; len(got) != 1 || got[0] != proto {
		t.Errorf(engine+": X-Forwarded-Proto = %q, want [%s]", got, proto)
	}
	if got := out["X-Forwarded-Port"]; len(got) != 1 || got[0] != port {
		t.Errorf(engine+": X-Forwarded-Port = %q, want [%s]", got, port)
	}
	wantFor := ip
	if len(inFor) > 0 {
		wantFor = strings.Join(inFor, ", ") + ", " + wantFor
	}
	if got := out["X-Forwarded-For"]; len(got) != 1 || got[0] != wantFor {
		t.Errorf(engine+": X-Forwarded-For = %q, want [%q]", got, wantFor)
	}
	if got := out["X-Request-Id"]; len(got) != 1 || !saneRequestID(got[0]) {
		t.Errorf(engine+": X-Request-Id = %q, want one sane id", got)
	} else if len(inID) == 1 && saneRequestID(inID[0]) && got[0] != inID[0] {
		t.Errorf(engine+": X-Request-Id = %q, want the client's %q", got[0], inID[0])
	}
	for k, vs := range out {
		if !httpguts.ValidHeaderFieldName(k) {
			t.Errorf(engine+": invalid header name %q sent on", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				t.Errorf(engine+": invalid value of %s sent on: %q", k, v)
			}
		}
		merged := http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))
		if routerOwned(merged) && merged != k {
			t.Errorf(engine+": client's %s reached the backend, which may read it as %s", k, merged)
		}
		switch merged {
		case "Forwarded", "X-Forwarded-Host", "X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Forwarded-Protocol", "Front-End-Https", "X-Url-Scheme":
			t.Errorf(engine+": client's %s = %q reached the backend", k, vs)
		}
	}
}

// serverAccepts reports whether net/http's server would hand req to a
// handler: ReadRequest alone checks less.
func serverAccepts(req *http.Request) bool {
	hosts := req.Header["Host"]
	if len(hosts) > 1 || len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]) {
		return false
	}
	for k, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzWalkChunked checks the fasthttp engine's reading of a chunked body
// that came whole with its header against net/http's chunked reader: a
// body it takes is one net/http reads the same, to the same end.
func FuzzWalkChunked(f *testing.F) {
	for _, seed := range []string{
		"d\r\nhello, world!\r\n0\r\n\r\n",
		"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\n\r\nNEXT",
		"A\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
		"5\r\nhel",
		"zz\r\nhello\r\n0\r\n\r\n",
		"0\r\n\r\n",
		"5 \r\nhello\r\n0\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		used, ok := walkChunked(in, nil)
		if !ok {
			return
		}
		if used > len(in) {
			t.Fatalf("used %d of %d bytes", used, len(in))
		}
		var resp fasthttp.Response
		if again, ok := walkChunked(in, &resp); !ok || again != used {
			t.Fatalf("second walk: %d %v, first %d", again, ok, used)
		}
		br := bufio.NewReader(bytes.NewReader(in))
		want, err := io.ReadAll(httputil.NewChunkedReader(br))
		if err != nil {
			t.Fatalf("walkChunked took %q, which net/http refuses: %v", in[:used], err)
		}
		if !bytes.Equal(resp.Body(), want) {
			t.Fatalf("body %q, net/http reads %q", resp.Body(), want)
		}
		// net/http's reader stops after the last chunk's size line; the
		// empty line that ends the (empty) trailer is what remains.
		rest, _ := io.ReadAll(br)
		if len(in)-len(rest)+2 != used {
			t.Fatalf("took %d bytes, net/http's reader left %d of %d (+2 for the end of the trailer)", used, len(rest), len(in))
		}
	})
}
