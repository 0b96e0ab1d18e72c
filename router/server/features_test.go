package server

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/poll"
)

func TestStickySessions(t *testing.T) {
	tr := startRouter(t, Config{})
	a, b, c := namedBackend(t, "a"), namedBackend(t, "b"), namedBackend(t, "c")
	tr.addHTTPRoute(t, &controller.Route{ID: "sticky", Domain: "sticky.test", Sticky: true}, a, b, c)

	resp, _ := tr.get(t, "sticky.test", "/")
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == stickyCookieName("sticky") {
			cookie = ck
		}
	}
	if cookie == nil {
		t.Fatalf("first response set no sticky cookie: %v", resp.Header["Set-Cookie"])
	}
	if strings.Contains(cookie.Value, "127.0.0.1") {
		t.Errorf("cookie %q reveals the backend address", cookie.Value)
	}
	pinned := backendOf(resp)
	for i := 0; i < 30; i++ {
		req, _ := http.NewRequest("GET", tr.url("/"), nil)
		req.Host = "sticky.test"
		req.AddCookie(cookie)
		resp, _ := do(t, tr.client, req)
		if got := backendOf(resp); got != pinned {
			t.Fatalf("request %d with the cookie went to %q, want pinned %q", i, got, pinned)
		}
		if len(resp.Header["Set-Cookie"]) != 0 {
			t.Errorf("pinned request got a new cookie: %v", resp.Header["Set-Cookie"])
		}
	}

	// Without the cookie, or with a forged one, clients spread out.
	seen := map[string]bool{}
	for i := 0; i < 60 && len(seen) < 3; i++ {
		req, _ := http.NewRequest("GET", tr.url("/"), nil)
		req.Host = "sticky.test"
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: "forged"})
		resp, _ := do(t, tr.client, req)
		seen[backendOf(resp)] = true
		if len(resp.Header["Set-Cookie"]) == 0 {
			t.Fatal("forged cookie was accepted (no new cookie set)")
		}
	}
	if len(seen) < 2 {
		t.Errorf("unpinned clients all went to %v", seen)
	}

	// When the pinned backend leaves, the client is re-pinned elsewhere.
	var rest []string
	for _, s := range []*httptest.Server{a, b, c} {
		if s.URL != "" && backendName(s, a, b, c) != pinned {
			rest = append(rest, s.Listener.Addr().String())
		}
	}
	tr.backends.set("svc-sticky", rest...)
	poll.Until(t, 5*time.Second, "the pinned backend to leave", func() bool {
		return tr.table.Load().lookup("sticky.test", "/").pool.size() == 2
	})
	req, _ := http.NewRequest("GET", tr.url("/"), nil)
	req.Host = "sticky.test"
	req.AddCookie(cookie)
	resp, _ = do(t, tr.client, req)
	if backendOf(resp) == pinned || resp.StatusCode != http.StatusOK || len(resp.Header["Set-Cookie"]) == 0 {
		t.Errorf("after the pinned backend left: %d from %q, cookies %v; want 200 from another with a new cookie",
			resp.StatusCode, backendOf(resp), resp.Header["Set-Cookie"])
	}
}

func backendName(s *httptest.Server, a, b, c *httptest.Server) string {
	switch s {
	case a:
		return "a"
	case b:
		return "b"
	}
	return "c"
}

func TestTLSWithSNIAndHTTP2(t *testing.T) {
	tr := startRouter(t, Config{})
	pool := x509.NewCertPool()
	for _, name := range []string{"one.test", "*.two.test"} {
		certPEM, keyPEM, err := selfSignedPEM(name)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(certPEM)
		id := strings.TrimPrefix(name, "*.")
		tr.addHTTPRoute(t, &controller.Route{ID: id, Domain: name, Certificate: &controller.Certificate{Cert: string(certPEM), Key: string(keyPEM)}}, namedBackend(t, id))
	}

	for _, tc := range []struct{ serverName, backend string }{
		{"one.test", "one.test"},
		{"app.two.test", "two.test"},
	} {
		tp := &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: tc.serverName},
			ForceAttemptHTTP2: true,
		}
		client := &http.Client{Transport: tp, Timeout: 5 * time.Second}
		req, _ := http.NewRequest("GET", "https://"+tr.HTTPSAddr().String()+"/", nil)
		req.Host = tc.serverName
		resp, body := do(t, client, req)
		tp.CloseIdleConnections()
		if resp.StatusCode != http.StatusOK || backendOf(resp) != tc.backend {
			t.Errorf("%s: %d from %q, want 200 from %q", tc.serverName, resp.StatusCode, backendOf(resp), tc.backend)
		}
		if resp.ProtoMajor != 2 {
			t.Errorf("%s: protocol %s, want HTTP/2", tc.serverName, resp.Proto)
		}
		if got := resp.TLS.PeerCertificates[0].DNSNames[0]; !strings.HasSuffix(tc.serverName, strings.TrimPrefix(got, "*")) {
			t.Errorf("%s: served certificate for %q", tc.serverName, got)
		}
		if v, _ := echoedHeader(body, "X-Forwarded-Proto"); v != "https" {
			t.Errorf("%s: X-Forwarded-Proto = %q, want https", tc.serverName, v)
		}
	}

	// An unknown name gets the default certificate.
	conn, err := tls.Dial("tcp", tr.HTTPSAddr().String(), &tls.Config{ServerName: "unknown.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "flynn-router" {
		t.Errorf("unknown server name got certificate %q, want the default", got)
	}
}

func TestWebsocketUpgrade(t *testing.T) {
	tr := startRouter(t, Config{})
	// The backend accepts any upgrade and echoes what it reads.
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

	conn, err := net.Dial("tcp", tr.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /socket HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %d, want 101", resp.StatusCode)
	}
	for i := 0; i < 3; i++ {
		msg := "message " + strconv.Itoa(i) + "\n"
		io.WriteString(conn, msg)
		got, err := br.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("echo %d = %q, %v; want %q", i, got, err, msg)
		}
	}
}

func TestTCPRoute(t *testing.T) {
	tr := startRouter(t, Config{})
	// An echo server that answers after the client half-closes, which only
	// works when the router passes the half-close on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoDone := make(chan struct{})
	go func() {
		defer close(echoDone)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, _ := io.ReadAll(c)
			c.Write([]byte("echo:" + string(b)))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-echoDone })

	port := freePort(t)
	tr.backends.set("tcp-svc", ln.Addr().String())
	tr.routes.set(&controller.Route{ID: "tcp", Type: "tcp", Port: port, Service: "tcp-svc"})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var got string
	poll.Until(t, 5*time.Second, "the tcp route to echo", func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("hello"))
		c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		got = string(b)
		return got != ""
	})
	if got != "echo:hello" {
		t.Errorf("tcp route answered %q, want %q", got, "echo:hello")
	}

	tr.routes.remove("tcp")
	poll.Until(t, 5*time.Second, "the tcp listener to close", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}
