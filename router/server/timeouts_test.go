package server

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/poll"
)

// testIdle is the idle timeout the tests below configure; activity that
// must keep a connection open comes every testTick, for 3 testIdle.
const (
	testIdle = 300 * time.Millisecond
	testTick = 50 * time.Millisecond
)

// tcpBackend is a TCP server that hands each connection to serve and
// closes it when serve returns or the test ends.
func tcpBackend(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// addTCPRoute adds a tcp route to backend and waits until it is served.
func (tr *testRouter) addTCPRoute(t *testing.T, id, backend string) string {
	t.Helper()
	port := freePort(t)
	tr.backends.set("svc-"+id, backend)
	tr.routes.set(&controller.Route{ID: id, Type: controller.RouteTypeTCP, Port: port, Service: "svc-" + id})
	poll.Until(t, 5*time.Second, "tcp route "+id, func() bool {
		e := tr.table.Load().tcp[port]
		return e != nil && e.pool.size() == 1
	})
	return "127.0.0.1:" + strconv.Itoa(port)
}

// dialRoute connects to a route, waiting for its listener.
func dialRoute(t *testing.T, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	poll.UntilNil(t, 5*time.Second, "connect to "+addr, func() (err error) {
		c, err = net.Dial("tcp", addr)
		return err
	})
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return c
}

// expectClosed reads from c until the router closes it, failing the test
// when data comes instead or c's deadline passes first.
func expectClosed(t *testing.T, c net.Conn, r io.Reader, what string) {
	t.Helper()
	b, err := io.ReadAll(r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: still open after the client's deadline", what)
	}
	if len(b) > 0 {
		t.Fatalf("%s: got %q, want the connection closed", what, b)
	}
}

// lineEcho echoes each line it reads.
func lineEcho(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := io.WriteString(c, line); err != nil {
			return
		}
	}
}

func TestTCPIdleTimeout(t *testing.T) {
	tr := startRouter(t, Config{TCPIdleTimeout: testIdle})

	t.Run("an idle connection is closed", func(t *testing.T) {
		addr := tr.addTCPRoute(t, "echo", tcpBackend(t, lineEcho))
		c := dialRoute(t, addr)
		br := bufio.NewReader(c)
		io.WriteString(c, "ping\n")
		if got, err := br.ReadString('\n'); err != nil || got != "ping\n" {
			t.Fatalf("echo = %q, %v", got, err)
		}
		start := time.Now()
		expectClosed(t, c, br, "idle connection")
		if d := time.Since(start); d < testIdle*9/10 {
			t.Errorf("closed after %v idle, before the timeout %v", d, testIdle)
		}
	})

	// Bytes one way only keep a connection open: a download, a log tail.
	t.Run("backend to client only", func(t *testing.T) {
		addr := tr.addTCPRoute(t, "talker", tcpBackend(t, func(c net.Conn) {
			tick := time.NewTicker(testTick)
			defer tick.Stop()
			for i := 0; i < int(3*testIdle/testTick); i++ {
				<-tick.C
				if _, err := io.WriteString(c, "x"); err != nil {
					return
				}
			}
			io.WriteString(c, "end")
		}))
		c := dialRoute(t, addr)
		b, err := io.ReadAll(c)
		if err != nil || !strings.HasSuffix(string(b), "end") {
			t.Errorf("stream one way: got %q, %v; want it whole", b, err)
		}
	})
	t.Run("client to backend only", func(t *testing.T) {
		got := make(chan int, 1)
		addr := tr.addTCPRoute(t, "listener", tcpBackend(t, func(c net.Conn) {
			b, _ := io.ReadAll(c)
			got <- len(b)
			io.WriteString(c, "done")
		}))
		c := dialRoute(t, addr)
		tick := time.NewTicker(testTick)
		defer tick.Stop()
		n := int(3 * testIdle / testTick)
		for i := 0; i < n; i++ {
			<-tick.C
			if _, err := io.WriteString(c, "x"); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
		c.(*net.TCPConn).CloseWrite()
		if b, err := io.ReadAll(c); err != nil || string(b) != "done" {
			t.Errorf("after streaming to the backend: %q, %v; want done", b, err)
		}
		if m := <-got; m != n {
			t.Errorf("backend got %d bytes, want %d", m, n)
		}
	})
}

// TestTCPPerRouteLimit: a route at its own limit has its new connections
// closed, while another route still gets its own.
func TestTCPPerRouteLimit(t *testing.T) {
	tr := startRouter(t, Config{MaxTCPConns: 10, MaxTCPConnsPerRoute: 2})
	accepted := make(chan string, 20)
	hold := func(name string) func(net.Conn) {
		return func(c net.Conn) {
			accepted <- name
			io.Copy(io.Discard, c)
		}
	}
	busy := tr.addTCPRoute(t, "busy", tcpBackend(t, hold("busy")))
	quiet := tr.addTCPRoute(t, "quiet", tcpBackend(t, hold("quiet")))

	var held []net.Conn
	for i := 0; i < 2; i++ {
		held = append(held, dialRoute(t, busy))
		if got := <-accepted; got != "busy" {
			t.Fatalf("accepted by %s, want busy", got)
		}
	}
	over := dialRoute(t, busy)
	expectClosed(t, over, over, "a connection beyond the route's limit")

	for i := 0; i < 2; i++ {
		c := dialRoute(t, quiet)
		if got := <-accepted; got != "quiet" {
			t.Fatalf("accepted by %s, want quiet", got)
		}
		io.WriteString(c, "hello")
	}

	// A closed connection frees its slot.
	held[0].Close()
	port := busy[strings.LastIndexByte(busy, ':')+1:]
	p, _ := strconv.Atoi(port)
	poll.Until(t, 5*time.Second, "a slot of busy to be free again", func() bool {
		tr.tcp.mu.Lock()
		defer tr.tcp.mu.Unlock()
		return tr.tcp.portSlots[p].n.Load() < 2
	})
	dialRoute(t, busy)
	if got := <-accepted; got != "busy" {
		t.Fatalf("accepted by %s, want busy", got)
	}
}

func TestTCPLimitDefaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       Config
		total, pr int
	}{
		{"defaults", Config{}, 20000, 5000},
		{"a quarter of the total", Config{MaxTCPConns: 100}, 100, 25},
		{"at least one", Config{MaxTCPConns: 2}, 2, 1},
		{"set", Config{MaxTCPConns: 100, MaxTCPConnsPerRoute: 60}, 100, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cfg.withDefaults()
			if got.MaxTCPConns != tc.total || got.MaxTCPConnsPerRoute != tc.pr {
				t.Errorf("MaxTCPConns, MaxTCPConnsPerRoute = %d, %d; want %d, %d", got.MaxTCPConns, got.MaxTCPConnsPerRoute, tc.total, tc.pr)
			}
			if got.TCPIdleTimeout == 0 || got.BodyReadTimeout == 0 {
				t.Errorf("TCPIdleTimeout %v, BodyReadTimeout %v: want defaults", got.TCPIdleTimeout, got.BodyReadTimeout)
			}
		})
	}
}

func TestUpgradeIdleTimeout(t *testing.T) {
	tr := startRouter(t, Config{TCPIdleTimeout: testIdle})
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			io.WriteString(w, "not an upgrade")
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(conn, brw)
	}))
	t.Cleanup(echo.Close)
	tr.addHTTPRoute(t, &controller.Route{ID: "ws", Domain: "ws.test"}, echo)
	upgrade := func(t *testing.T) (net.Conn, *bufio.Reader) {
		conn, err := net.Dial("tcp", tr.HTTPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, "GET /socket HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade answered %d, want 101", resp.StatusCode)
		}
		return conn, br
	}

	t.Run("an idle upgraded connection is closed", func(t *testing.T) {
		conn, br := upgrade(t)
		io.WriteString(conn, "ping\n")
		if got, err := br.ReadString('\n'); err != nil || got != "ping\n" {
			t.Fatalf("echo = %q, %v", got, err)
		}
		expectClosed(t, conn, br, "idle upgraded connection")
	})
	t.Run("an active one stays", func(t *testing.T) {
		conn, br := upgrade(t)
		tick := time.NewTicker(testTick)
		defer tick.Stop()
		for i := 0; i < int(3*testIdle/testTick); i++ {
			<-tick.C
			msg := "message " + strconv.Itoa(i) + "\n"
			io.WriteString(conn, msg)
			if got, err := br.ReadString('\n'); err != nil || got != msg {
				t.Fatalf("echo %d = %q, %v; want %q", i, got, err, msg)
			}
		}
	})
}

// bodyBackend reads the whole body, taking its time to answer when asked
// to (?wait=duration), and answers its size.
func bodyBackend(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if d, err := time.ParseDuration(r.URL.Query().Get("wait")); err == nil {
			// A backend slow to answer once it has the body.
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "got %d bytes", n)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestBodyReadTimeout(t *testing.T) {
	tr := startRouter(t, Config{BodyReadTimeout: testIdle})
	tr.addHTTPRoute(t, &controller.Route{ID: "up", Domain: "up.test"}, bodyBackend(t))

	t.Run("a stalled body is cut", func(t *testing.T) {
		for _, framing := range []string{"Content-Length: 100\r\n\r\n0123456789", "Transfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n"} {
			conn, err := net.Dial("tcp", tr.HTTPAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			start := time.Now()
			io.WriteString(conn, "POST / HTTP/1.1\r\nHost: up.test\r\n"+framing)
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%q: %v", framing, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("%q: stalled body answered %d %q, want 408", framing, resp.StatusCode, b)
			}
			if d := time.Since(start); d < testIdle*15/16 {
				t.Errorf("%q: cut after %v, before the timeout %v", framing, d, testIdle)
			}
			expectClosed(t, conn, br, "connection of a stalled body")
		}
	})

	t.Run("a stalled body over HTTP/2 is cut", func(t *testing.T) {
		tp := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
		t.Cleanup(tp.CloseIdleConnections)
		pr, pw := io.Pipe()
		defer pw.Close()
		go pw.Write([]byte("0123456789"))
		req, _ := http.NewRequest("POST", "https://"+tr.HTTPSAddr().String()+"/", pr)
		req.Host = "up.test"
		req.ContentLength = 100
		resp, body := do(t, &http.Client{Transport: tp, Timeout: 10 * time.Second}, req)
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("%s: stalled body answered %d %q, want 408", resp.Proto, resp.StatusCode, body)
		}
	})

	t.Run("a slow upload that keeps sending goes through", func(t *testing.T) {
		pr, pw := io.Pipe()
		n := int(3 * testIdle / testTick)
		go func() {
			tick := time.NewTicker(testTick)
			defer tick.Stop()
			for i := 0; i < n; i++ {
				<-tick.C
				if _, err := pw.Write([]byte("x")); err != nil {
					return
				}
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", tr.url("/"), pr)
		req.Host = "up.test"
		resp, body := do(t, tr.client, req)
		if want := fmt.Sprintf("got %d bytes", n); resp.StatusCode != http.StatusOK || body != want {
			t.Errorf("slow upload: %d %q, want 200 %q", resp.StatusCode, body, want)
		}
	})

	// ReadTimeout still bounds the whole request: the body's deadline
	// never moves past it.
	t.Run("ReadTimeout bounds an upload that keeps sending", func(t *testing.T) {
		tr := startRouter(t, Config{ReadTimeout: 2 * testIdle, BodyReadTimeout: time.Minute})
		tr.addHTTPRoute(t, &controller.Route{ID: "up", Domain: "up.test"}, bodyBackend(t))
		pr, pw := io.Pipe()
		defer pw.Close()
		go func() {
			tick := time.NewTicker(testTick)
			defer tick.Stop()
			for range tick.C {
				if _, err := pw.Write([]byte("x")); err != nil {
					return
				}
			}
		}()
		req, _ := http.NewRequest("POST", tr.url("/"), pr)
		req.Host = "up.test"
		resp, body := do(t, tr.client, req)
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("upload beyond ReadTimeout: %d %q, want 408", resp.StatusCode, body)
		}
	})

	// Once the body is in, the backend may take longer than the body
	// timeout to answer.
	t.Run("a slow answer after the body", func(t *testing.T) {
		for _, size := range []int{10, 1 << 20} {
			req, _ := http.NewRequest("POST", tr.url("/?wait="+(2*testIdle).String()), strings.NewReader(strings.Repeat("y", size)))
			req.Host = "up.test"
			resp, body := do(t, tr.client, req)
			if want := fmt.Sprintf("got %d bytes", size); resp.StatusCode != http.StatusOK || body != want {
				t.Errorf("body of %d, slow answer: %d %q, want 200 %q", size, resp.StatusCode, body, want)
			}
		}
	})

	// The connection serves on after a request whose body was read to its
	// end: the deadline does not outlive the request.
	t.Run("keep-alive after a body", func(t *testing.T) {
		conn, err := net.Dial("tcp", tr.HTTPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		for i, wait := range []time.Duration{0, 2 * testIdle} {
			io.WriteString(conn, "POST /?wait="+wait.String()+" HTTP/1.1\r\nHost: up.test\r\nContent-Length: 3\r\n\r\nabc")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(b) != "got 3 bytes" {
				t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
			}
		}
	})
}
