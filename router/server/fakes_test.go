package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/router"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeRoutes is a RouteSource whose routes a test sets.
type fakeRoutes struct {
	mu     sync.Mutex
	routes map[string]*controller.Route
	subs   map[chan router.RouteEvent]bool
	nextID int64
}

var _ RouteSource = (*fakeRoutes)(nil)

func newFakeRoutes() *fakeRoutes {
	return &fakeRoutes{routes: map[string]*controller.Route{}, subs: map[chan router.RouteEvent]bool{}}
}

func (f *fakeRoutes) Routes(ctx context.Context) ([]*controller.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*controller.Route
	for _, r := range f.routes {
		out = append(out, r)
	}
	return out, nil
}

func (f *fakeRoutes) WatchRoutes(ctx context.Context) (<-chan router.RouteEvent, error) {
	ch := make(chan router.RouteEvent, 1000)
	f.mu.Lock()
	f.subs[ch] = true
	f.mu.Unlock()
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, ch)
		close(ch)
	})
	return ch, nil
}

func (f *fakeRoutes) publish(op string, r *controller.Route) {
	f.nextID++
	for ch := range f.subs {
		ch <- router.RouteEvent{ID: f.nextID, Op: op, Route: r}
	}
}

func (f *fakeRoutes) set(r *controller.Route) {
	f.mu.Lock()
	defer f.mu.Unlock()
	op := controller.OpCreate
	if f.routes[r.ID] != nil {
		op = controller.OpUpdate
	}
	f.routes[r.ID] = r
	f.publish(op, r)
}

func (f *fakeRoutes) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.routes[id]; r != nil {
		delete(f.routes, id)
		f.publish(controller.OpDelete, r)
	}
}

// fakeBackends is a BackendSource whose services' instances a test sets.
type fakeBackends struct {
	mu   sync.Mutex
	sets map[string][]router.Backend
	subs map[string]map[chan []router.Backend]bool
}

var _ BackendSource = (*fakeBackends)(nil)

func newFakeBackends() *fakeBackends {
	return &fakeBackends{sets: map[string][]router.Backend{}, subs: map[string]map[chan []router.Backend]bool{}}
}

func (f *fakeBackends) WatchBackends(ctx context.Context, service string) (<-chan []router.Backend, error) {
	ch := make(chan []router.Backend, 1)
	f.mu.Lock()
	if f.subs[service] == nil {
		f.subs[service] = map[chan []router.Backend]bool{}
	}
	f.subs[service][ch] = true
	ch <- f.sets[service]
	f.mu.Unlock()
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs[service], ch)
		close(ch)
	})
	return ch, nil
}

// set replaces a service's instances by backends at addrs.
func (f *fakeBackends) set(service string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var set []router.Backend
	for _, a := range addrs {
		set = append(set, router.Backend{ID: "id-" + a, Addr: a})
	}
	f.sets[service] = set
	for ch := range f.subs[service] {
		select { // keep only the newest set queued
		case <-ch:
		default:
		}
		ch <- set
	}
}

// testRouter is a Router running on loopback with fake sources.
type testRouter struct {
	*Router
	routes   *fakeRoutes
	backends *fakeBackends
	client   *http.Client
	stop     func() error
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("ROUTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startRouter starts a router for a test. Its HTTP engine is the default
// (fasthttp) unless $ROUTER_TEST_HTTP_ENGINE names another: the Makefile
// runs this package's tests once per engine.
func startRouter(t testing.TB, cfg Config) *testRouter {
	t.Helper()
	if cfg.HTTPEngine == "" {
		cfg.HTTPEngine = os.Getenv("ROUTER_TEST_HTTP_ENGINE")
	}
	if cfg.HTTPAddrs == nil {
		cfg.HTTPAddrs = []string{"127.0.0.1:0"}
	}
	if cfg.HTTPSAddrs == nil {
		cfg.HTTPSAddrs = []string{"127.0.0.1:0"}
	}
	cfg.MetricsAddr = "127.0.0.1:0"
	if cfg.TCPHosts == nil {
		cfg.TCPHosts = []string{"127.0.0.1"}
	}
	if cfg.StickyKey == nil {
		cfg.StickyKey = []byte("test sticky key")
	}
	tr := &testRouter{routes: newFakeRoutes(), backends: newFakeBackends()}
	r, err := New(cfg, tr.routes, tr.backends, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	tr.Router = r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var runErr error
	tr.stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	tr.client = newClient(t)
	t.Cleanup(func() {
		if err := tr.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return tr
}

// newClient is an HTTP client whose idle connections are closed when the
// test ends (for the goroutine leak check).
func newClient(t testing.TB) *http.Client {
	tp := &http.Transport{MaxIdleConnsPerHost: 100}
	t.Cleanup(tp.CloseIdleConnections)
	return &http.Client{
		Transport:     tp,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (tr *testRouter) url(path string) string { return "http://" + tr.HTTPAddr().String() + path }

// get sends a GET for host and path through the router's HTTP listener.
func (tr *testRouter) get(t testing.TB, host, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", tr.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	return do(t, tr.client, req)
}

func do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", req.Method, req.URL, req.Host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

// addHTTPRoute adds an http route and waits until the router serves it
// (from the given backends, which the route's service is set to).
func (tr *testRouter) addHTTPRoute(t testing.TB, rt *controller.Route, backends ...*httptest.Server) {
	t.Helper()
	rt.Type = controller.RouteTypeHTTP
	if rt.Service == "" {
		rt.Service = "svc-" + rt.ID
	}
	var addrs []string
	for _, b := range backends {
		addrs = append(addrs, b.Listener.Addr().String())
	}
	tr.backends.set(rt.Service, addrs...)
	tr.routes.set(rt)
	want := http.StatusOK
	if len(addrs) == 0 {
		want = http.StatusServiceUnavailable
	}
	host := strings.Replace(rt.Domain, "*", "x", 1)
	path := rt.Path
	if path == "" {
		path = "/"
	}
	poll.Until(t, 5*time.Second, fmt.Sprintf("route %s (%s%s) to answer %d", rt.ID, host, path, want), func() bool {
		resp, _ := tr.get(t, host, path)
		return resp.StatusCode == want
	})
}

// namedBackend answers every request with its name and what it saw.
func namedBackend(t testing.TB, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Backend", name)
		var keys []string
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(w, "backend=%s\nhost=%s\npath=%s\nbody=%s\n", name, r.Host, r.URL.Path, body)
		for _, k := range keys {
			fmt.Fprintf(w, "header %s=%s\n", k, strings.Join(r.Header[k], "|"))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// backendOf returns the X-Backend of a response.
func backendOf(resp *http.Response) string { return resp.Header.Get("X-Backend") }

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
