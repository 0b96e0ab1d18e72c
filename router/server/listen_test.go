package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/router"
)

// TestNodeAddresses binds a router as flynn-router does on a node: the
// node's address and its app gateway (two loopback addresses here), HTTP
// and TCP routes on each, and nothing on the machine's other addresses.
func TestNodeAddresses(t *testing.T) {
	port := strconv.Itoa(freePort(t))
	hosts := []string{"127.0.0.1", "127.0.0.2"}
	var addrs []string
	for _, h := range hosts {
		addrs = append(addrs, net.JoinHostPort(h, port))
	}
	tr := startRouter(t, Config{HTTPAddrs: addrs, TCPHosts: hosts})
	tr.addHTTPRoute(t, &controller.Route{ID: "web", Domain: "web.test"}, namedBackend(t, "web"))
	tcpPort := freePort(t)
	tr.backends.set("tcp-svc", namedBackend(t, "tcp").Listener.Addr().String())
	tr.routes.set(&controller.Route{ID: "tcp", Type: controller.RouteTypeTCP, Port: tcpPort, Service: "tcp-svc"})

	for _, h := range hosts {
		req, _ := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort(h, port)+"/", nil)
		req.Host = "web.test"
		if resp, body := do(t, tr.client, req); resp.StatusCode != http.StatusOK || backendOf(resp) != "web" {
			t.Errorf("HTTP on %s: %d %q, want the route's backend", h, resp.StatusCode, body)
		}
		// The TCP route passes HTTP through as bytes.
		tcpURL := "http://" + net.JoinHostPort(h, strconv.Itoa(tcpPort)) + "/"
		poll.Until(t, 5*time.Second, "the tcp route on "+h, func() bool {
			resp, err := tr.client.Get(tcpURL)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return backendOf(resp) == "tcp"
		})
	}
	for _, addr := range []string{net.JoinHostPort("127.0.0.3", port), net.JoinHostPort("127.0.0.3", strconv.Itoa(tcpPort))} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s answers; the router should bind its node's addresses only", addr)
		}
	}
}

// TestReusePort runs two routers on one address, as a one-by-one deploy
// does on a node: both bind it, and once the first has drained the second
// serves alone. Without ReusePort the second cannot bind.
func TestReusePort(t *testing.T) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	tcpPort := freePort(t)
	tcpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tcpPort))
	backend := namedBackend(t, "web")
	start := func() *testRouter {
		tr := startRouter(t, Config{HTTPAddrs: []string{addr}, ReusePort: true})
		tr.addHTTPRoute(t, &controller.Route{ID: "web", Domain: "web.test"}, backend)
		tr.backends.set("tcp-svc", backend.Listener.Addr().String())
		tr.routes.set(&controller.Route{ID: "tcp", Type: controller.RouteTypeTCP, Port: tcpPort, Service: "tcp-svc"})
		return tr
	}
	old, replacement := start(), start()
	get := func(url string) error {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Host = "web.test"
		req.Close = true // a new connection each time, so each may land on either router
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if backendOf(resp) != "web" {
			return fmt.Errorf("answered %s without the backend", resp.Status)
		}
		return nil
	}
	poll.Until(t, 5*time.Second, "the tcp route on both routers", func() bool {
		return old.tcp.bound(tcpPort) && replacement.tcp.bound(tcpPort)
	})
	for i := range 20 {
		if err := get("http://" + addr + "/"); err != nil {
			t.Fatalf("request %d with both routers: %v", i, err)
		}
		if err := get("http://" + tcpAddr + "/"); err != nil {
			t.Fatalf("tcp request %d with both routers: %v", i, err)
		}
	}
	if err := old.stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := get("http://" + addr + "/"); err != nil {
			t.Fatalf("request %d after the first router stopped: %v", i, err)
		}
		if err := get("http://" + tcpAddr + "/"); err != nil {
			t.Fatalf("tcp request %d after the first router stopped: %v", i, err)
		}
	}

	_, err := New(Config{HTTPAddrs: []string{addr}}, newFakeRoutes(), newFakeBackends(), testLogger(t))
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("a router without ReusePort on a taken address: err = %v, want EADDRINUSE", err)
	}
}

// bound reports whether port has its listeners.
func (p *tcpProxy) bound(port int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.listeners[port]) > 0
}

// stalledRoutes is a route source whose listing waits for release.
type stalledRoutes struct {
	*fakeRoutes
	release chan struct{}
}

func (s *stalledRoutes) Routes(ctx context.Context) ([]*controller.Route, error) {
	select {
	case <-s.release:
		return s.fakeRoutes.Routes(ctx)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *stalledRoutes) WatchRoutes(ctx context.Context) (<-chan router.RouteEvent, error) {
	return s.fakeRoutes.WatchRoutes(ctx)
}

// TestHealth checks the metrics listener's /health: 503 until the router
// has its routes, 200 after; bootstrap waits for it.
func TestHealth(t *testing.T) {
	routes := &stalledRoutes{fakeRoutes: newFakeRoutes(), release: make(chan struct{})}
	r, err := New(Config{MetricsAddr: "127.0.0.1:0"}, routes, newFakeBackends(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	client := newClient(t)
	health := func() (int, string) {
		resp, err := client.Get("http://" + r.MetricsAddr().String() + "/health")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	poll.Until(t, 5*time.Second, "the metrics listener to answer", func() bool { code, _ := health(); return code != 0 })
	if code, body := health(); code != http.StatusServiceUnavailable {
		t.Errorf("before the routes: /health = %d %q, want 503", code, body)
	}
	close(routes.release)
	poll.Until(t, 5*time.Second, "/health to answer 200 once the routes are in", func() bool { code, _ := health(); return code == http.StatusOK })
}

// TestServesOnceRoutesAreKnown checks that a request that reaches a router
// before its first route listing waits for it and is then served, not
// answered "no route"; and that a router whose listing never comes serves
// after Config.SyncTimeout, answering 503 with Retry-After.
func TestServesOnceRoutesAreKnown(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "app") }))
	defer backend.Close()

	start := func(t *testing.T, syncTimeout time.Duration) (*Router, *stalledRoutes) {
		routes := &stalledRoutes{fakeRoutes: newFakeRoutes(), release: make(chan struct{})}
		routes.set(&controller.Route{ID: "r1", Type: "http", Domain: "app.test", Service: "app-web"})
		backends := newFakeBackends()
		backends.set("app-web", backend.Listener.Addr().String())
		r, err := New(Config{HTTPAddrs: []string{"127.0.0.1:0"}, SyncTimeout: syncTimeout}, routes, backends, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
		return r, routes
	}
	get := func(client *http.Client, r *Router) (status int, body string, retryAfter string, err error) {
		req, err := http.NewRequest("GET", "http://"+r.HTTPAddr().String()+"/", nil)
		if err != nil {
			return 0, "", "", err
		}
		req.Host = "app.test"
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Retry-After"), err
	}

	t.Run("waits for the routes", func(t *testing.T) {
		r, routes := start(t, time.Minute)
		type answer struct {
			status int
			body   string
			err    error
		}
		answered := make(chan answer, 1)
		client := newClient(t)
		go func() {
			status, body, _, err := get(client, r)
			answered <- answer{status, body, err}
		}()
		poll.Holds(t, 300*time.Millisecond, "no answer before the routes are listed", func() bool { return len(answered) == 0 })
		close(routes.release)
		if a := <-answered; a.err != nil || a.status != http.StatusOK || a.body != "app" {
			t.Errorf("after the listing: %d %q %v, want 200 \"app\"", a.status, a.body, a.err)
		}
	})
	t.Run("serves after SyncTimeout", func(t *testing.T) {
		r, routes := start(t, 100*time.Millisecond)
		defer close(routes.release)
		status, body, retryAfter, err := get(newClient(t), r)
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusServiceUnavailable || retryAfter == "" || !strings.Contains(body, "routes not loaded yet") {
			t.Errorf("without routes after SyncTimeout: %d %q (Retry-After %q), want 503 with Retry-After", status, body, retryAfter)
		}
	})
}
