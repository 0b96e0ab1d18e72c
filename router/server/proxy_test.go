package server

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/poll"
)

// header returns a header line the named backend echoed.
func echoedHeader(body, name string) (string, bool) {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, "header "+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func TestRoutingByHostAndPath(t *testing.T) {
	tr := startRouter(t, Config{})
	root, api, wild := namedBackend(t, "root"), namedBackend(t, "api"), namedBackend(t, "wild")
	tr.addHTTPRoute(t, &controller.Route{ID: "root", Domain: "app.test"}, root)
	tr.addHTTPRoute(t, &controller.Route{ID: "api", Domain: "app.test", Path: "/api"}, api)
	tr.addHTTPRoute(t, &controller.Route{ID: "wild", Domain: "*.apps.test"}, wild)

	for _, tc := range []struct{ host, path, want string }{
		{"app.test", "/", "root"},
		{"app.test", "/api/x", "api"},
		{"APP.test:80", "/api", "api"},
		{"app.test", "/apix", "root"},
		{"one.apps.test", "/", "wild"},
	} {
		resp, body := tr.get(t, tc.host, tc.path)
		if resp.StatusCode != http.StatusOK || backendOf(resp) != tc.want {
			t.Errorf("GET %s%s: %d from %q, want 200 from %q", tc.host, tc.path, resp.StatusCode, backendOf(resp), tc.want)
		}
		if !strings.Contains(body, "host="+tc.host+"\n") {
			t.Errorf("GET %s%s: backend saw another Host:\n%s", tc.host, tc.path, body)
		}
	}
}

func TestNotFoundAndNoBackends(t *testing.T) {
	tr := startRouter(t, Config{})
	tr.addHTTPRoute(t, &controller.Route{ID: "empty", Domain: "empty.test"})

	resp, body := tr.get(t, "nothing.test", "/x")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `no route matches host "nothing.test" and path "/x"`) {
		t.Errorf("unrouted host: %d %q, want 404 naming host and path", resp.StatusCode, body)
	}
	resp, body = tr.get(t, "empty.test", "/")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "no backends available") {
		t.Errorf("route without backends: %d %q, want 503 saying no backends", resp.StatusCode, body)
	}
}

func TestForwardingHeaders(t *testing.T) {
	tr := startRouter(t, Config{})
	tr.addHTTPRoute(t, &controller.Route{ID: "h", Domain: "h.test"}, namedBackend(t, "h"))
	port := strconv.Itoa(tr.HTTPAddr().(*net.TCPAddr).Port)

	// A client's X-Forwarded-For is kept (Heroku appends to it); its
	// X-Forwarded-Proto and -Port are replaced by what the router saw, so a
	// client on plain HTTP cannot pass for one on HTTPS.
	t.Run("For appended, Proto and Port replaced", func(t *testing.T) {
		req, _ := http.NewRequest("GET", tr.url("/"), nil)
		req.Host = "h.test"
		req.Header.Set("X-Forwarded-For", "10.0.0.1")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-Port", "443")
		req.Header.Set("X-Request-Id", "client-request-id-0123")
		req.Header.Set("Connection", "X-Secret, keep-alive")
		req.Header.Set("X-Secret", "hop")
		req.Header.Set("Keep-Alive", "timeout=5")
		req.Header.Set("Proxy-Authorization", "Basic x")
		before := time.Now().UnixMilli()
		resp, body := do(t, tr.client, req)
		after := time.Now().UnixMilli()
		for name, want := range map[string]string{
			"X-Forwarded-For":   "10.0.0.1, 127.0.0.1",
			"X-Forwarded-Proto": "http",
			"X-Forwarded-Port":  port,
			"X-Request-Id":      "client-request-id-0123",
		} {
			if got, _ := echoedHeader(body, name); got != want {
				t.Errorf("backend saw %s = %q, want %q", name, got, want)
			}
		}
		for _, hop := range []string{"X-Secret", "Keep-Alive", "Proxy-Authorization", "Connection"} {
			if v, ok := echoedHeader(body, hop); ok {
				t.Errorf("hop-by-hop header %s = %q reached the backend", hop, v)
			}
		}
		start, _ := echoedHeader(body, "X-Request-Start")
		if ms, err := strconv.ParseInt(start, 10, 64); err != nil || ms < before || ms > after {
			t.Errorf("X-Request-Start = %q, want ms since epoch in [%d, %d]", start, before, after)
		}
		if got := resp.Header.Get("X-Request-Id"); got != "client-request-id-0123" {
			t.Errorf("response X-Request-Id = %q, want the client's", got)
		}
	})

	t.Run("over HTTPS the client's Proto and Port are replaced too", func(t *testing.T) {
		tp := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		t.Cleanup(tp.CloseIdleConnections)
		req, _ := http.NewRequest("GET", "https://"+tr.HTTPSAddr().String()+"/", nil)
		req.Host = "h.test"
		req.Header.Add("X-Forwarded-Proto", "http")
		req.Header.Add("X-Forwarded-Proto", "ws")
		req.Header.Set("X-Forwarded-Port", "80")
		_, body := do(t, &http.Client{Transport: tp, Timeout: 10 * time.Second}, req)
		httpsPort := strconv.Itoa(tr.HTTPSAddr().(*net.TCPAddr).Port)
		if got, _ := echoedHeader(body, "X-Forwarded-Proto"); got != "https" {
			t.Errorf("X-Forwarded-Proto = %q, want https", got)
		}
		if got, _ := echoedHeader(body, "X-Forwarded-Port"); got != httpsPort {
			t.Errorf("X-Forwarded-Port = %q, want %s", got, httpsPort)
		}
	})

	// Frameworks believe other headers than X-Forwarded-Proto (Rack takes
	// X-Forwarded-Ssl: on for HTTPS first), and CGI-style servers give
	// X_Forwarded_Proto the name of X-Forwarded-Proto: none of the
	// client's reach the app.
	t.Run("other claims to HTTPS are dropped", func(t *testing.T) {
		req, _ := http.NewRequest("GET", tr.url("/"), nil)
		req.Host = "h.test"
		claims := map[string]string{
			"X-Forwarded-Ssl":      "on",
			"X-Forwarded-Scheme":   "https",
			"X-Forwarded-Protocol": "https",
			"Front-End-Https":      "on",
			"X-Url-Scheme":         "https",
			"X_Forwarded_Proto":    "https",
			"X_forwarded_port":     "443",
			"X_Forwarded_For":      "10.9.9.9",
			"X-Forwarded_Ssl":      "on",
			"X_Request_Id":         "spoofed-request-id-0123",
		}
		for k, v := range claims {
			req.Header[k] = []string{v}
		}
		_, body := do(t, tr.client, req)
		for k := range claims {
			if v, ok := echoedHeader(body, http.CanonicalHeaderKey(k)); ok {
				t.Errorf("client's %s = %q reached the backend", k, v)
			}
		}
		if got, _ := echoedHeader(body, "X-Forwarded-Proto"); got != "http" {
			t.Errorf("X-Forwarded-Proto = %q, want http", got)
		}
		if got, _ := echoedHeader(body, "X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q, want 127.0.0.1", got)
		}
	})

	t.Run("set when the client sent none", func(t *testing.T) {
		req, _ := http.NewRequest("GET", tr.url("/"), nil)
		req.Host = "h.test"
		_, body := do(t, tr.client, req)
		if got, _ := echoedHeader(body, "X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q, want 127.0.0.1", got)
		}
		if got, _ := echoedHeader(body, "X-Forwarded-Proto"); got != "http" {
			t.Errorf("X-Forwarded-Proto = %q, want http", got)
		}
		id, _ := echoedHeader(body, "X-Request-Id")
		if len(id) != 36 || !saneRequestID(id) {
			t.Errorf("X-Request-Id = %q, want a generated UUID replacing the insane one", id)
		}
	})
}

func TestClientRequestIDsOutsideTheRuleAreReplaced(t *testing.T) {
	tr := startRouter(t, Config{})
	tr.addHTTPRoute(t, &controller.Route{ID: "h", Domain: "h.test"}, namedBackend(t, "h"))
	for _, id := range []string{"short-id-123", "bad id with spaces but long enough", "under_score_is_not_allowed_here"} {
		req, _ := http.NewRequest("GET", tr.url("/"), nil)
		req.Host = "h.test"
		req.Header.Set("X-Request-Id", id)
		resp, body := do(t, tr.client, req)
		got, _ := echoedHeader(body, "X-Request-Id")
		if got == id || len(got) != 36 || !saneRequestID(got) {
			t.Errorf("client id %q: backend saw %q, want a generated UUID", id, got)
		}
		if resp.Header.Get("X-Request-Id") != got {
			t.Errorf("client id %q: response id %q, want the one the backend saw (%q)", id, resp.Header.Get("X-Request-Id"), got)
		}
	}
}

func TestSaneRequestID(t *testing.T) {
	for id, want := range map[string]bool{
		"abc-123":                          false, // under 20 characters
		"Zm9vYmFy+/=Zm9vYmFy+/=":           true,
		"abcdefghij0123456789":             true,
		"abcdefghij012345678":              false,
		"under_score_is_not_allowed_here":  false,
		"":                                 false,
		"has space":                        false,
		"new\nline":                        false,
		strings.Repeat("a", 200):           true,
		strings.Repeat("a", 201):           false,
		"f47ac10b-58cc-4372-a567-0e02b2c3": true,
	} {
		if got := saneRequestID(id); got != want {
			t.Errorf("saneRequestID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestRetryOnConnectFailure(t *testing.T) {
	tr := startRouter(t, Config{})
	live := namedBackend(t, "live")
	dead := "127.0.0.1:" + strconv.Itoa(freePort(t))
	tr.addHTTPRoute(t, &controller.Route{ID: "r", Domain: "retry.test", Service: "retry"}, live)
	tr.backends.set("retry", dead, live.Listener.Addr().String())
	poll.Until(t, 5*time.Second, "both backends in the pool", func() bool {
		e := tr.table.Load().lookup("retry.test", "/")
		return e != nil && e.pool.size() == 2
	})
	// A POST with a body is retried too: connecting failed, so the
	// request never left the router.
	for i := 0; i < 20; i++ {
		req, _ := http.NewRequest("POST", tr.url("/"), strings.NewReader("payload-"+strconv.Itoa(i)))
		req.Host = "retry.test"
		resp, body := do(t, tr.client, req)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "body=payload-"+strconv.Itoa(i)+"\n") {
			t.Fatalf("POST %d: %d %q, want 200 from the live backend with the body intact", i, resp.StatusCode, body)
		}
	}
}

// A backend that drops the connection after reading the request: a GET
// (idempotent, no body) goes to another backend, a POST does not.
func TestRetryAfterSendOnlyWhenIdempotent(t *testing.T) {
	tr := startRouter(t, Config{})
	var dropped atomic.Int64
	dropper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dropped.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(dropper.Close)
	good := namedBackend(t, "good")
	tr.addHTTPRoute(t, &controller.Route{ID: "r", Domain: "drop.test", Service: "drop"}, good)
	tr.backends.set("drop", dropper.Listener.Addr().String(), good.Listener.Addr().String())
	poll.Until(t, 5*time.Second, "both backends in the pool", func() bool {
		e := tr.table.Load().lookup("drop.test", "/")
		return e != nil && e.pool.size() == 2
	})

	for i := 0; i < 20; i++ {
		resp, _ := tr.get(t, "drop.test", "/")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %d: %d, want 200 (retried on the good backend)", i, resp.StatusCode)
		}
	}
	if dropped.Load() == 0 {
		t.Fatal("no GET reached the dropping backend; the test proves nothing")
	}
	var posts502 int
	for i := 0; posts502 == 0 && i < 50; i++ {
		before := dropped.Load()
		req, _ := http.NewRequest("POST", tr.url("/"), strings.NewReader("once"))
		req.Host = "drop.test"
		resp, _ := do(t, tr.client, req)
		if dropped.Load() > before {
			if resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("POST dropped after sending: %d, want 502 (not retried)", resp.StatusCode)
			}
			posts502++
		} else if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST to good backend: %d", resp.StatusCode)
		}
	}
	if posts502 == 0 {
		t.Fatal("no POST reached the dropping backend")
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	tr := startRouter(t, Config{ResponseHeaderTimeout: 100 * time.Millisecond, MaxAttempts: 1})
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	tr.backends.set("slow", slow.Listener.Addr().String())
	tr.routes.set(&controller.Route{ID: "slow", Type: "http", Domain: "slow.test", Service: "slow"})
	poll.Until(t, 5*time.Second, "route with a backend", func() bool {
		e := tr.table.Load().lookup("slow.test", "/")
		return e != nil && e.pool.size() == 1
	})
	resp, body := tr.get(t, "slow.test", "/")
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("slow backend: %d %q, want 504", resp.StatusCode, body)
	}
}

// TestHopByHopResponse checks the way back: the backend's hop-by-hop
// headers do not reach the client.
func TestHopByHopResponse(t *testing.T) {
	tr := startRouter(t, Config{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Internal")
		w.Header().Set("X-Internal", "secret")
		w.Header().Set("X-Public", "ok")
		io.WriteString(w, "hi")
	}))
	t.Cleanup(be.Close)
	tr.addHTTPRoute(t, &controller.Route{ID: "r", Domain: "hop.test"}, be)
	conn, err := net.Dial("tcp", tr.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: hop.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Internal") != "" || resp.Header.Get("X-Public") != "ok" {
		t.Errorf("response headers %v: want X-Public kept and X-Internal stripped", resp.Header)
	}
}
