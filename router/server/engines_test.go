package server

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/poll"
)

// The tests below (TestEngine*) are what both HTTP engines must do on the
// wire: they only talk to the router's HTTP listener, as clients do, and
// look at what backends get. The Makefile runs them once per engine
// ($ROUTER_TEST_HTTP_ENGINE, see startRouter).

// engineWait bounds every wait of these tests on the router: far above
// what a working router takes, so that a miss is a failure, not a flake.
const engineWait = 5 * time.Second

// engineBackend starts a backend serving h and routes host to it. h must
// answer GET / with 200: addHTTPRoute waits for that.
func engineBackend(t *testing.T, tr *testRouter, host string, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tr.addHTTPRoute(t, &controller.Route{ID: host, Domain: host}, srv)
	return srv
}

// rawConn is a connection to the router's HTTP listener, for requests
// net/http's client would not send as written; it is closed when the test
// ends, and everything on it must be done within 10 s.
func rawConn(t *testing.T, tr *testRouter) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", tr.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return conn, bufio.NewReader(conn)
}

// roundTripRaw writes a raw request on conn and reads its answer, for a
// request of method (the reader must know a HEAD answer has no body).
func roundTripRaw(t *testing.T, conn net.Conn, br *bufio.Reader, method, raw string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("write %q: %v", raw, err)
	}
	return readRaw(t, br, method)
}

// readRaw reads one answer to a request of method from br.
func readRaw(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read answer to %s: %v", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of answer to %s: %v", method, err)
	}
	return resp, string(b)
}

// pattern is n bytes that do not repeat in any short period, the same for
// the same n: a body whose bytes reordered or lost do not go unnoticed.
func pattern(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 0x5eed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// releaseOnce is a channel a blocked backend waits on, closed by the test
// or, if the test failed first, when it ends: releaseAtEnd must come after
// the backend is started, so that it runs before the backend's Close, which
// waits for its handlers.
type releaseOnce struct {
	ch   chan struct{}
	once sync.Once
}

func newRelease() *releaseOnce { return &releaseOnce{ch: make(chan struct{})} }

func (r *releaseOnce) releaseAtEnd(t *testing.T) { t.Cleanup(r.release) }

func (r *releaseOnce) release() { r.once.Do(func() { close(r.ch) }) }

// TestEngineStreaming checks that a response is passed on as the backend
// writes it: the header, and the first part of a body, must reach the
// client while the backend still holds the rest back (Server-Sent Events,
// long polls, slow downloads).
func TestEngineStreaming(t *testing.T) {
	tr := startRouter(t, Config{})
	for _, tc := range []struct {
		name        string
		contentType string
		// length sets Content-Length; else the body is chunked.
		length      bool
		first, rest string
	}{
		{"server-sent events", "text/event-stream", false, "id: 1\ndata: first\n\n", "id: 2\ndata: second\n\n"},
		// The header alone, as an event stream with no event yet sends it:
		// a client that waits for it (the controller's event stream, which
		// the CLI opens before a change) must not wait for the first event.
		{"server-sent events, none yet", "text/event-stream", false, "", "id: 1\ndata: first\n\n"},
		{"chunked", "application/octet-stream", false, strings.Repeat("a", 1<<10), strings.Repeat("b", 1<<10)},
		{"content-length", "application/octet-stream", true, strings.Repeat("c", 1<<10), strings.Repeat("d", 1<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := newRelease()
			host := strings.ReplaceAll(tc.name, " ", "-") + ".stream.test"
			engineBackend(t, tr, host, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/stream" {
					io.WriteString(w, "ok")
					return
				}
				w.Header().Set("Content-Type", tc.contentType)
				if tc.length {
					w.Header().Set("Content-Length", strconv.Itoa(len(tc.first)+len(tc.rest)))
				}
				io.WriteString(w, tc.first)
				if err := http.NewResponseController(w).Flush(); err != nil {
					t.Errorf("backend flush: %v", err)
				}
				select {
				case <-release.ch:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, tc.rest)
			})
			release.releaseAtEnd(t)

			conn, br := rawConn(t, tr)
			io.WriteString(conn, "GET /stream HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
			conn.SetReadDeadline(time.Now().Add(engineWait))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no response header while the backend holds the rest of its body: %v", err)
			}
			defer resp.Body.Close()
			if got := resp.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tc.contentType)
			}
			if tc.length && resp.ContentLength != int64(len(tc.first)+len(tc.rest)) {
				t.Errorf("Content-Length = %d, want the backend's %d", resp.ContentLength, len(tc.first)+len(tc.rest))
			}
			first := make([]byte, len(tc.first))
			if n, err := io.ReadFull(resp.Body, first); err != nil {
				t.Fatalf("got %d of the %d bytes the backend flushed within %s while it held the rest: %v", n, len(first), engineWait, err)
			}
			if string(first) != tc.first {
				t.Fatalf("first part = %q, want %q", first, tc.first)
			}
			release.release()
			conn.SetReadDeadline(time.Now().Add(engineWait))
			rest, err := io.ReadAll(resp.Body)
			if err != nil || string(rest) != tc.rest {
				t.Fatalf("rest = %q, %v; want %q", rest, err, tc.rest)
			}
		})
	}
}

// bodiesBackend serves /down?size=N&mode=length|chunked, N bytes of
// pattern framed as mode says; /up, what it got of the request's body
// (see upAnswer); anything else, "ok".
func bodiesBackend(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/down":
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		body := pattern(size)
		if r.URL.Query().Get("mode") == "length" {
			w.Header().Set("Content-Length", strconv.Itoa(size))
		} else {
			// Flushing before the first byte sends the header without a
			// length, so that even an empty body is chunked.
			_ = http.NewResponseController(w).Flush()
		}
		for len(body) > 0 {
			n := min(len(body), 32<<10)
			if _, err := w.Write(body[:n]); err != nil {
				return
			}
			body = body[n:]
		}
	case "/up":
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, upAnswer(n, h.Sum(nil), r.Header["Content-Length"], r.TransferEncoding))
	default:
		io.WriteString(w, "ok")
	}
}

// upAnswer is what bodiesBackend answers to an upload: its size, hash and
// framing.
func upAnswer(n int64, sum []byte, contentLength, transferEncoding []string) string {
	return fmt.Sprintf("n=%d sha256=%x content-length=%q transfer-encoding=%q", n, sum, contentLength, transferEncoding)
}

// TestEngineBodies checks that bodies of all sizes, framed either way, go
// through whole in both directions.
func TestEngineBodies(t *testing.T) {
	tr := startRouter(t, Config{})
	engineBackend(t, tr, "bodies.test", bodiesBackend)

	t.Run("responses", func(t *testing.T) {
		for _, size := range []int{0, 13, 4 << 10, 100 << 10, 3 << 20} {
			for _, mode := range []string{"length", "chunked"} {
				req, _ := http.NewRequest("GET", tr.url(fmt.Sprintf("/down?size=%d&mode=%s", size, mode)), nil)
				req.Host = "bodies.test"
				resp, body := do(t, tr.client, req)
				want := pattern(size)
				if resp.StatusCode != http.StatusOK || len(body) != size || sha256.Sum256([]byte(body)) != sha256.Sum256(want) {
					t.Errorf("%d B, %s: %d with %d B (sha256 %x), want 200 with %d B (sha256 %x)",
						size, mode, resp.StatusCode, len(body), sha256.Sum256([]byte(body)), size, sha256.Sum256(want))
				}
				if mode == "length" && resp.ContentLength != int64(size) {
					t.Errorf("%d B, %s: client saw Content-Length %d, want the backend's %d", size, mode, resp.ContentLength, size)
				}
			}
		}
	})

	t.Run("uploads", func(t *testing.T) {
		for _, size := range []int{100 << 10, 3 << 20} {
			for _, chunked := range []bool{false, true} {
				body := pattern(size)
				req, _ := http.NewRequest("POST", tr.url("/up"), bytes.NewReader(body))
				req.Host = "bodies.test"
				if chunked {
					req.ContentLength = -1
				}
				resp, got := do(t, tr.client, req)
				sum := sha256.Sum256(body)
				want := fmt.Sprintf("n=%d sha256=%x", size, sum)
				if resp.StatusCode != http.StatusOK || !strings.HasPrefix(got, want+" ") {
					t.Errorf("%d B upload (chunked %v): backend answered %d %q, want 200 %q", size, chunked, resp.StatusCode, got, want)
				}
			}
		}
	})

	// A POST without a body still tells the backend it has none, as
	// net/http's client does, whether the client said so or not.
	t.Run("empty POST", func(t *testing.T) {
		sum := sha256.Sum256(nil)
		want := upAnswer(0, sum[:], []string{"0"}, nil)
		for _, tc := range []struct{ name, framing string }{
			{"Content-Length: 0", "Content-Length: 0\r\n"},
			{"no length at all", ""},
		} {
			conn, br := rawConn(t, tr)
			resp, got := roundTripRaw(t, conn, br, "POST", "POST /up HTTP/1.1\r\nHost: bodies.test\r\n"+tc.framing+"\r\n")
			if resp.StatusCode != http.StatusOK || got != want {
				t.Errorf("POST with %s: backend answered %d %q, want 200 %q", tc.name, resp.StatusCode, got, want)
			}
		}
	})
}

// TestEngineBodylessAnswers checks answers that have no body whatever
// their headers say: the router must neither send nor wait for one, and
// the client's connection must carry the next request.
func TestEngineBodylessAnswers(t *testing.T) {
	tr := startRouter(t, Config{})
	engineBackend(t, tr, "bodyless.test", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			// What a GET would have: HEAD says how long it is.
			w.Header().Set("Content-Length", "1234")
			if r.Method != http.MethodHead {
				w.Write(pattern(1234))
			}
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		default:
			io.WriteString(w, "ok")
		}
	})
	for _, tc := range []struct {
		method, path string
		wantStatus   int
		wantLength   string
	}{
		{"HEAD", "/head", http.StatusOK, "1234"},
		{"GET", "/204", http.StatusNoContent, ""},
		{"GET", "/304", http.StatusNotModified, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			conn, br := rawConn(t, tr)
			for i := 0; i < 2; i++ {
				resp, body := roundTripRaw(t, conn, br, tc.method, tc.method+" "+tc.path+" HTTP/1.1\r\nHost: bodyless.test\r\n\r\n")
				if resp.StatusCode != tc.wantStatus || body != "" {
					t.Fatalf("%s %s (%d): %d with %q, want %d without a body", tc.method, tc.path, i, resp.StatusCode, body, tc.wantStatus)
				}
				if got := resp.Header.Get("Content-Length"); tc.wantLength != "" && got != tc.wantLength {
					t.Errorf("%s %s: Content-Length %q, want the backend's %q", tc.method, tc.path, got, tc.wantLength)
				}
				resp, body = roundTripRaw(t, conn, br, "GET", "GET / HTTP/1.1\r\nHost: bodyless.test\r\n\r\n")
				if resp.StatusCode != http.StatusOK || body != "ok" {
					t.Fatalf("GET / after %s %s on the same connection: %d %q, want 200 %q", tc.method, tc.path, resp.StatusCode, body, "ok")
				}
			}
		})
	}
}

// oneShotBackend is a raw backend that answers one request per connection
// with a keep-alive answer (no Connection: close), then closes the
// connection without a word, as a server whose keep-alive timeout is
// shorter than the router's does. The answer names the request's method
// and body; closed counts the connections it has closed after answering.
func oneShotBackend(t *testing.T) (addr string, closed *atomic.Int64) {
	closed = new(atomic.Int64)
	addr = tcpBackend(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		msg := "method=" + req.Method + " body=" + string(body)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
		c.Close()
		closed.Add(1)
	})
	return addr, closed
}

// TestEngineBackendConnections checks the router's keep-alive connections
// to backends: reused when the backend keeps them, and never a failed
// request when the backend closes them, saying so or not.
func TestEngineBackendConnections(t *testing.T) {
	tr := startRouter(t, Config{})

	t.Run("backend answers Connection: close", func(t *testing.T) {
		engineBackend(t, tr, "close.test", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "closing "+r.URL.Path)
		})
		for i := 0; i < 20; i++ {
			path := "/" + strconv.Itoa(i)
			resp, body := tr.get(t, "close.test", path)
			if resp.StatusCode != http.StatusOK || body != "closing "+path {
				t.Fatalf("GET %d: %d %q, want 200 %q", i, resp.StatusCode, body, "closing "+path)
			}
		}
	})

	t.Run("backend closes kept connections without a word", func(t *testing.T) {
		addr, closed := oneShotBackend(t)
		tr.backends.set("svc-oneshot", addr)
		tr.routes.set(&controller.Route{ID: "oneshot", Type: controller.RouteTypeHTTP, Domain: "oneshot.test", Service: "svc-oneshot"})
		poll.Until(t, engineWait, "route with the one-shot backend", func() bool {
			e := tr.table.Load().lookup("oneshot.test", "/")
			return e != nil && e.pool.size() == 1
		})
		// A GET may go again on a new connection, so it must succeed
		// even when sent while the backend is still closing the last one.
		// A POST may not (the backend may have acted on it), and no proxy
		// can tell a connection that is about to close: it goes once the
		// backend has closed the previous one, which the router must see.
		var answered int64
		for _, method := range []string{"GET", "POST"} {
			for i := 0; i < 20; i++ {
				var body io.Reader
				want := "method=" + method + " body="
				if method == "POST" {
					payload := "small body " + strconv.Itoa(i)
					body, want = strings.NewReader(payload), want+payload
					poll.Until(t, engineWait, "the backend to close its last connection", func() bool { return closed.Load() >= answered })
				}
				req, _ := http.NewRequest(method, tr.url("/"), body)
				req.Host = "oneshot.test"
				resp, got := do(t, tr.client, req)
				if resp.StatusCode != http.StatusOK || got != want {
					t.Errorf("%s %d: %d %q, want 200 %q", method, i, resp.StatusCode, got, want)
					continue
				}
				answered++
			}
		}
	})

	t.Run("connections are reused", func(t *testing.T) {
		var opened atomic.Int64
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				opened.Add(1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		tr.addHTTPRoute(t, &controller.Route{ID: "reuse", Domain: "reuse.test"}, srv)
		before := opened.Load()
		for i := 0; i < 50; i++ {
			resp, body := tr.get(t, "reuse.test", "/")
			if resp.StatusCode != http.StatusOK || body != "ok" {
				t.Fatalf("GET %d: %d %q", i, resp.StatusCode, body)
			}
		}
		if n := opened.Load() - before; n > 3 {
			t.Errorf("50 sequential GETs opened %d backend connections, want at most 3", n)
		}
	})
}

// TestEngineClientGone checks that a client that leaves while its
// backend works ends the backend's request: the router closes its
// connection to the backend, whose context then ends.
func TestEngineClientGone(t *testing.T) {
	tr := startRouter(t, Config{})
	got := make(chan struct{}, 1)
	ended := make(chan struct{}, 1)
	release := newRelease()
	engineBackend(t, tr, "gone.test", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/block" {
			io.WriteString(w, "ok")
			return
		}
		got <- struct{}{}
		select {
		case <-r.Context().Done():
			ended <- struct{}{}
		case <-release.ch:
		}
	})
	release.releaseAtEnd(t)

	conn, _ := rawConn(t, tr)
	io.WriteString(conn, "GET /block HTTP/1.1\r\nHost: gone.test\r\n\r\n")
	select {
	case <-got:
	case <-time.After(engineWait):
		t.Fatal("the request did not reach the backend")
	}
	conn.Close()
	select {
	case <-ended:
	case <-time.After(engineWait):
		t.Fatalf("the backend's request went on %s after its client left", engineWait)
	}
}

// TestEngineRequestHopByHop checks that the client's hop-by-hop headers,
// and those its Connection header names, stop at the router.
func TestEngineRequestHopByHop(t *testing.T) {
	tr := startRouter(t, Config{})
	tr.addHTTPRoute(t, &controller.Route{ID: "hop", Domain: "hop.test"}, namedBackend(t, "hop"))
	for _, tc := range []struct {
		name, te string
		// te is what the backend may see of Te: a router that passes
		// trailers on says so for its own hop (net/http's ReverseProxy
		// does, when the client said it takes them); the client's other
		// codings never go through.
		allowedTe []string
	}{
		{"Te: trailers", "trailers", []string{"", "trailers"}},
		{"Te: a coding", "deflate", []string{""}},
		{"Te: trailers and a coding", "trailers, deflate;q=0.5", []string{"", "trailers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, br := rawConn(t, tr)
			resp, body := roundTripRaw(t, conn, br, "GET", "GET / HTTP/1.1\r\nHost: hop.test\r\n"+
				"Connection: keep-alive, X-Secret\r\n"+
				"X-Secret: 1\r\n"+
				"Keep-Alive: timeout=5\r\n"+
				"Te: "+tc.te+"\r\n"+
				"Proxy-Authorization: Basic x\r\n"+
				"Upgrade: h2c\r\n"+
				"X-Custom: kept\r\n"+
				"Cookie: a=1\r\n"+
				"Cookie: b=2\r\n\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%d %q, want 200", resp.StatusCode, body)
			}
			if got, _ := echoedHeader(body, "X-Custom"); got != "kept" {
				t.Errorf("backend saw X-Custom = %q, want %q", got, "kept")
			}
			// Two Cookie lines may reach the backend as they came or
			// joined into one, as HTTP/2 does; both cookies must.
			cookies, _ := echoedHeader(body, "Cookie")
			parsed := map[string]bool{}
			for _, line := range strings.Split(cookies, "|") {
				for _, ck := range strings.Split(line, ";") {
					parsed[strings.TrimSpace(ck)] = true
				}
			}
			if !parsed["a=1"] || !parsed["b=2"] {
				t.Errorf("backend saw Cookie %q, want a=1 and b=2", cookies)
			}
			for _, hop := range []string{"Connection", "X-Secret", "Keep-Alive", "Proxy-Authorization", "Upgrade"} {
				if v, ok := echoedHeader(body, hop); ok {
					t.Errorf("hop-by-hop header %s = %q reached the backend", hop, v)
				}
			}
			te, _ := echoedHeader(body, "Te")
			ok := false
			for _, allowed := range tc.allowedTe {
				ok = ok || te == allowed
			}
			if !ok {
				t.Errorf("backend saw Te = %q, want one of %q", te, tc.allowedTe)
			}
		})
	}
}

// TestEngineOddRequests checks requests that are valid HTTP/1.x though
// few clients send them.
func TestEngineOddRequests(t *testing.T) {
	tr := startRouter(t, Config{})
	engineBackend(t, tr, "odd.test", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "path=%s query=%s body=%s", r.URL.Path, r.URL.RawQuery, body)
	})

	t.Run("HTTP/1.0 without keep-alive", func(t *testing.T) {
		conn, br := rawConn(t, tr)
		resp, body := roundTripRaw(t, conn, br, "GET", "GET /ten HTTP/1.0\r\nHost: odd.test\r\n\r\n")
		if want := "path=/ten query= body="; resp.StatusCode != http.StatusOK || body != want {
			t.Fatalf("%d %q, want 200 %q", resp.StatusCode, body, want)
		}
		expectClosed(t, conn, br, "HTTP/1.0 connection after its answer")
	})

	t.Run("absolute-form target", func(t *testing.T) {
		conn, br := rawConn(t, tr)
		resp, body := roundTripRaw(t, conn, br, "GET", "GET http://odd.test/path?q=1 HTTP/1.1\r\nHost: odd.test\r\n\r\n")
		if want := "path=/path query=q=1 body="; resp.StatusCode != http.StatusOK || body != want {
			t.Errorf("%d %q, want 200 %q", resp.StatusCode, body, want)
		}
	})

	t.Run("pipelined", func(t *testing.T) {
		conn, br := rawConn(t, tr)
		io.WriteString(conn, "GET /one HTTP/1.1\r\nHost: odd.test\r\n\r\nGET /two HTTP/1.1\r\nHost: odd.test\r\n\r\n")
		for _, path := range []string{"/one", "/two"} {
			resp, body := readRaw(t, br, "GET")
			if want := "path=" + path + " query= body="; resp.StatusCode != http.StatusOK || body != want {
				t.Errorf("answer for %s: %d %q, want 200 %q", path, resp.StatusCode, body, want)
			}
		}
	})

	// The client waits for 100 Continue far longer than its whole
	// request may take: the router must send it (or an answer), not
	// leave the client to give up waiting and send the body anyway.
	t.Run("Expect: 100-continue", func(t *testing.T) {
		tp := &http.Transport{ExpectContinueTimeout: time.Hour}
		t.Cleanup(tp.CloseIdleConnections)
		client := &http.Client{Transport: tp, Timeout: 10 * time.Second}
		req, _ := http.NewRequest("POST", tr.url("/continue"), strings.NewReader("the body"))
		req.Host = "odd.test"
		req.Header.Set("Expect", "100-continue")
		resp, body := do(t, client, req)
		if want := "path=/continue query= body=the body"; resp.StatusCode != http.StatusOK || body != want {
			t.Errorf("%d %q, want 200 %q", resp.StatusCode, body, want)
		}
	})
}

// TestEngineConcurrency checks many requests at once over many client
// connections, spread over several backends.
func TestEngineConcurrency(t *testing.T) {
	tr := startRouter(t, Config{})
	backends := []*httptest.Server{namedBackend(t, "a"), namedBackend(t, "b"), namedBackend(t, "c")}
	tr.addHTTPRoute(t, &controller.Route{ID: "many", Domain: "many.test"}, backends...)

	tp := &http.Transport{MaxConnsPerHost: 50, MaxIdleConnsPerHost: 50}
	t.Cleanup(tp.CloseIdleConnections)
	client := &http.Client{Transport: tp, Timeout: 10 * time.Second}
	const requests = 200
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		served = map[string]int{}
		errs   []error
	)
	for i := 0; i < requests; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := func() error {
				req, _ := http.NewRequest("GET", tr.url("/"+strconv.Itoa(i)), nil)
				req.Host = "many.test"
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					return fmt.Errorf("GET %d: read body: %w", i, err)
				}
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "path=/"+strconv.Itoa(i)+"\n") {
					return fmt.Errorf("GET %d: %d %q, want 200 naming its path", i, resp.StatusCode, body)
				}
				mu.Lock()
				served[backendOf(resp)]++
				mu.Unlock()
				return nil
			}()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Errorf("%d of %d concurrent requests failed:\n%v", len(errs), requests, err)
	}
	for _, name := range []string{"a", "b", "c"} {
		if served[name] == 0 {
			t.Errorf("backend %s served none of %d requests (served: %v)", name, requests, served)
		}
	}
}

// TestEngineTrailers: the trailers a backend announces and sends after a
// chunked body reach the client (gRPC-Web and checksummed downloads use
// them).
func TestEngineTrailers(t *testing.T) {
	tr := startRouter(t, Config{})
	engineBackend(t, tr, "trailers.test", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.(http.Flusher).Flush()
		io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "sum-of-body")
	})
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequest("GET", tr.url("/"), nil)
		req.Host = "trailers.test"
		resp, body := do(t, tr.client, req)
		if resp.StatusCode != http.StatusOK || body != "body" {
			t.Fatalf("request %d: %d %q, want 200 \"body\"", i, resp.StatusCode, body)
		}
		if got := resp.Trailer.Get("X-Checksum"); got != "sum-of-body" {
			t.Errorf("request %d: trailer X-Checksum = %q, want sum-of-body (trailers %v)", i, got, resp.Trailer)
		}
	}
}
