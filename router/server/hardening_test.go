package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/poll"
)

func TestMetrics(t *testing.T) {
	tr := startRouter(t, Config{})
	tr.addHTTPRoute(t, &controller.Route{ID: "m", Domain: "m.test"}, namedBackend(t, "m1"), namedBackend(t, "m2"))
	scrape := func() string {
		_, body := do(t, tr.client, mustRequest(t, "GET", "http://"+tr.MetricsAddr().String()+"/metrics"))
		return body
	}
	// Polls while the route was being added may have counted 404s already.
	unmatched := func(body string) int {
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, "flynn_router_unmatched_requests_total "); ok {
				n, _ := strconv.Atoi(v)
				return n
			}
		}
		return -1
	}
	before := unmatched(scrape())
	for i := 0; i < 5; i++ {
		tr.get(t, "m.test", "/")
	}
	tr.get(t, "none.test", "/")

	body := scrape()
	if got := unmatched(body); got != before+1 {
		t.Errorf("unmatched requests went from %d to %d, want one more", before, got)
	}
	for _, want := range []string{
		`flynn_router_requests_total{route="m",service="svc-m",status="2xx",target="m.test/"}`,
		`flynn_router_request_duration_seconds_count{route="m",service="svc-m",target="m.test/"}`,
		`flynn_router_backends{route="m",service="svc-m",target="m.test/"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	tr.routes.remove("m")
	poll.Until(t, 5*time.Second, "route m to go", func() bool { return tr.table.Load().lookup("m.test", "/") == nil })
	if body := scrape(); strings.Contains(body, `route="m"`) {
		t.Errorf("a removed route's series remain")
	}
}

func mustRequest(t testing.TB, method, url string) *http.Request {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestBadInput(t *testing.T) {
	tr := startRouter(t, Config{ReadHeaderTimeout: 200 * time.Millisecond, MaxHeaderBytes: 8 << 10})
	tr.addHTTPRoute(t, &controller.Route{ID: "b", Domain: "bad.test"}, namedBackend(t, "b"))

	rawStatus := func(t *testing.T, request string) int {
		conn, err := net.Dial("tcp", tr.HTTPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, request)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, request string
		want          int
	}{
		{"huge headers", "GET / HTTP/1.1\r\nHost: bad.test\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"malformed request line", "GARBAGE\r\n\r\n", http.StatusBadRequest},
		{"bad header line", "GET / HTTP/1.1\r\nHost: bad.test\r\nno colon here\r\n\r\n", http.StatusBadRequest},
		{"no host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rawStatus(t, tc.request); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}

	t.Run("slowloris", func(t *testing.T) {
		conn, err := net.Dial("tcp", tr.HTTPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: bad.test\r\n")
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		// The server gives up on the unfinished headers and closes.
		b, _ := io.ReadAll(conn)
		if time.Since(start) > 3*time.Second {
			t.Errorf("slow client held its connection for %v", time.Since(start))
		}
		if strings.Contains(string(b), "200 OK") {
			t.Errorf("unfinished request was answered: %q", b)
		}
	})
}

// TestConnectionFlood opens far more connections than the limit and checks
// that goroutines stay bounded and the router still serves afterwards.
func TestConnectionFlood(t *testing.T) {
	tr := startRouter(t, Config{MaxConns: 20, ReadHeaderTimeout: 300 * time.Millisecond})
	tr.addHTTPRoute(t, &controller.Route{ID: "f", Domain: "flood.test"}, namedBackend(t, "f"))
	tr.client.Transport.(*http.Transport).CloseIdleConnections()
	base := runtime.NumGoroutine()

	var conns []net.Conn
	for i := 0; i < 300; i++ {
		c, err := net.Dial("tcp", tr.HTTPAddr().String())
		if err != nil {
			break // the accept queue is full: as good as a refusal
		}
		io.WriteString(c, "GET / HTTP/1.1\r\n") // never finished
		conns = append(conns, c)
	}
	if len(conns) < 50 {
		t.Fatalf("only %d connections opened; the test proves nothing", len(conns))
	}
	if n := runtime.NumGoroutine(); n > base+60 {
		t.Errorf("%d goroutines with %d idle connections open (limit 20), started from %d", n, len(conns), base)
	}
	for _, c := range conns {
		c.Close()
	}
	// Once the flood is gone, requests are served again.
	poll.Until(t, 5*time.Second, "the router to serve again", func() bool {
		resp, _ := tr.get(t, "flood.test", "/")
		return resp.StatusCode == http.StatusOK
	})
}

// TestGracefulShutdown: on shutdown a request in flight completes, and
// new connections are refused.
func TestGracefulShutdown(t *testing.T) {
	src, backends := newFakeRoutes(), newFakeBackends()
	r, err := New(Config{HTTPAddrs: []string{"127.0.0.1:0"}}, src, backends, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	started, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	}))
	defer slow.Close()
	backends.set("s", slow.Listener.Addr().String())
	src.set(&controller.Route{ID: "s", Type: "http", Domain: "s.test", Service: "s"})
	poll.Until(t, 5*time.Second, "the route", func() bool {
		e := r.table.Load().lookup("s.test", "/")
		return e != nil && e.pool.size() == 1
	})
	client := newClient(t)
	result := make(chan string, 1)
	go func() {
		req := mustRequest(t, "GET", "http://"+r.HTTPAddr().String()+"/")
		req.Host = "s.test"
		resp, err := client.Do(req)
		if err != nil {
			result <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		result <- string(b)
	}()
	<-started
	cancel()
	poll.Until(t, 5*time.Second, "the listener to close", func() bool {
		c, err := net.Dial("tcp", r.HTTPAddr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	if got := <-result; got != "done" {
		t.Errorf("in-flight request during shutdown got %q, want done", got)
	}
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
