package controllerroutes

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/controllertest"
	"github.com/openflynn/flynn/pkg/pgtest"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/router"
	"github.com/openflynn/flynn/router/server"
)

const testKey = "test-controller-key"

// gate sits in front of a real controller. It can cut the event stream (end
// every open stream and refuse new ones until reopened), records where each
// stream asked to resume, and runs hooks around the first GET /routes.
type gate struct {
	next http.Handler

	mu         sync.Mutex
	closed     bool
	cancels    []context.CancelFunc
	resumes    []string // Last-Event-Id of every stream let through
	beforeList func()
	afterList  func()
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/events":
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			http.Error(w, "gate closed", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		g.cancels = append(g.cancels, cancel)
		g.resumes = append(g.resumes, r.Header.Get("Last-Event-Id"))
		g.mu.Unlock()
		g.next.ServeHTTP(w, r.WithContext(ctx))
	case "/routes":
		g.mu.Lock()
		before, after := g.beforeList, g.afterList
		g.beforeList, g.afterList = nil, nil
		g.mu.Unlock()
		if before != nil {
			before()
		}
		// The reply is buffered until the handler returns, so after runs
		// once the list was read but before the router has it.
		g.next.ServeHTTP(w, r)
		if after != nil {
			after()
		}
	default:
		g.next.ServeHTTP(w, r)
	}
}

// cut ends every open event stream and refuses new ones until reopen.
func (g *gate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for _, c := range g.cancels {
		c()
	}
	g.cancels = nil
}

func (g *gate) reopen() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = false
}

func (g *gate) resumedFrom() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.resumes...)
}

// controllerEnv is a real controller with one app, and a gate in front of it.
type controllerEnv struct {
	admin *client.Client // straight to the controller
	gate  *gate
	front *client.Client // through the gate, for the Source under test
	app   *controller.App
}

func newControllerEnv(t *testing.T, pg *pgtest.Server) *controllerEnv {
	t.Helper()
	ctrl := controllertest.New(t, pg.NewDatabase(t), controllertest.Options{Key: testKey})
	g := &gate{next: ctrl.Server}
	front := httptest.NewServer(g)
	t.Cleanup(func() {
		front.CloseClientConnections()
		front.Close()
	})
	env := &controllerEnv{admin: ctrl.Client(), gate: g, front: client.NewWithHTTPClient(front.URL, testKey, front.Client()), app: &controller.App{Name: "web"}}
	if err := env.admin.CreateApp(context.Background(), env.app); err != nil {
		t.Fatal(err)
	}
	return env
}

func (e *controllerEnv) createRoute(t *testing.T, r *controller.Route) *controller.Route {
	t.Helper()
	if r.Service == "" {
		r.Service = "web"
	}
	if err := e.admin.CreateRoute(context.Background(), e.app.ID, r); err != nil {
		t.Fatalf("create route %+v: %v", r, err)
	}
	return r
}

func (e *controllerEnv) deleteRoute(t *testing.T, id string) {
	t.Helper()
	if err := e.admin.DeleteRoute(context.Background(), e.app.ID, id); err != nil {
		t.Fatalf("delete route %s: %v", id, err)
	}
}

func TestWithRealController(t *testing.T) {
	pg := shared.Server(t)
	t.Run("ListAndStream", func(t *testing.T) { testListAndStream(t, pg) })
	t.Run("RouterStartUp", func(t *testing.T) { testRouterStartUp(t, pg) })
	t.Run("WrongKey", func(t *testing.T) { testWrongKey(t, pg) })
	t.Run("CertificateKey", func(t *testing.T) { testCertificateKey(t, pg) })
	t.Run("RequestLogSetting", func(t *testing.T) { testRequestLogSetting(t, pg) })
}

// testRequestLogSetting: a route's NoRequestLog reaches the router in the
// list and in the events of its creation and of a change to it.
func testRequestLogSetting(t *testing.T, pg *pgtest.Server) {
	env := newControllerEnv(t, pg)
	listed := env.createRoute(t, &controller.Route{Type: controller.RouteTypeHTTP, Domain: "listed.test", NoRequestLog: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := New(env.front, testLogger())
	events, err := src.WatchRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stopWatch(cancel, events)
	list, err := src.Routes(ctx)
	if err != nil || len(list) != 1 || list[0].ID != listed.ID || !list[0].NoRequestLog {
		t.Fatalf("Routes = %v, %v; want %s with NoRequestLog", list, err, listed.ID)
	}

	rt := env.createRoute(t, &controller.Route{Type: controller.RouteTypeTCP, Port: 3100, NoRequestLog: true})
	if ev := nextEvent(t, events); ev.Op != controller.OpCreate || ev.Route.ID != rt.ID || !ev.Route.NoRequestLog {
		t.Fatalf("event = %s %+v, want the create of %s with NoRequestLog", ev.Op, ev.Route, rt.ID)
	}
	on := false
	if _, err := env.admin.UpdateRoute(ctx, env.app.ID, rt.ID, controller.RouteUpdate{NoRequestLog: &on}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events); ev.Op != controller.OpUpdate || ev.Route.ID != rt.ID || ev.Route.NoRequestLog || ev.Route.Port != 3100 {
		t.Fatalf("event = %s %+v, want the update of %s with NoRequestLog off", ev.Op, ev.Route, rt.ID)
	}
}

// testCertificateKey: the controller's route events carry no private key,
// yet the route the router gets from the stream has it.
func testCertificateKey(t *testing.T, pg *pgtest.Server) {
	env := newControllerEnv(t, pg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := New(env.front, testLogger()).WatchRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stopWatch(cancel, events)
	cert := selfSignedCert(t, "tls.test")
	rt := env.createRoute(t, &controller.Route{Type: controller.RouteTypeHTTP, Domain: "tls.test", Certificate: cert})
	ev := nextEvent(t, events)
	if ev.Route.ID != rt.ID || ev.Route.Certificate == nil || ev.Route.Certificate.Cert != cert.Cert || ev.Route.Certificate.Key != cert.Key {
		t.Fatalf("event route = %+v (certificate %+v), want %s with its certificate and key", ev.Route, ev.Route.Certificate, rt.ID)
	}
}

// selfSignedCert returns a certificate for domain and its key, in PEM.
func selfSignedCert(t *testing.T, domain string) *controller.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &controller.Certificate{
		Cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Key:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})),
	}
}

// testListAndStream: the list holds every route (more than one page), the
// stream carries creates and deletes, and a cut stream resumes where it
// stopped, both before its first event and after one, without repeats.
func testListAndStream(t *testing.T, pg *pgtest.Server) {
	env := newControllerEnv(t, pg)
	env.createRoute(t, &controller.Route{Type: controller.RouteTypeHTTP, Domain: "r1.test", Sticky: true})
	for i := range 100 { // the controller pages lists by 100
		env.createRoute(t, &controller.Route{Type: controller.RouteTypeHTTP, Domain: fmt.Sprintf("filler%d.test", i)})
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := New(env.front, testLogger())
	events, err := src.WatchRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stopWatch(cancel, events)

	// Cut before any event: the stream resumes from where it started.
	env.gate.cut()
	r2 := env.createRoute(t, &controller.Route{Type: controller.RouteTypeHTTP, Domain: "r2.test"})
	env.gate.reopen()
	ev := nextEvent(t, events)
	if ev.Op != controller.OpCreate || ev.Route.ID != r2.ID || ev.Route.Domain != "r2.test" {
		t.Fatalf("first event = %s %+v, want create of r2 %s", ev.Op, ev.Route, r2.ID)
	}
	created := ev.ID

	list, err := src.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byDomain := map[string]*controller.Route{}
	for _, r := range list {
		byDomain[r.Domain] = r
	}
	if len(list) != 102 || byDomain["r2.test"] == nil || byDomain["r1.test"] == nil || !byDomain["r1.test"].Sticky {
		t.Fatalf("Routes = %d routes (r1 %+v, r2 %+v), want 102 with r1 sticky and r2", len(list), byDomain["r1.test"], byDomain["r2.test"])
	}

	r1 := byDomain["r1.test"]
	env.deleteRoute(t, r1.ID)
	ev = nextEvent(t, events)
	if ev.Op != controller.OpDelete || ev.Route.ID != r1.ID || ev.Route.Domain != "r1.test" {
		t.Fatalf("event = %s %+v, want delete of r1 %s", ev.Op, ev.Route, r1.ID)
	}
	deleted := ev.ID

	// Cut after an event: the stream resumes after it.
	env.gate.cut()
	r3 := env.createRoute(t, &controller.Route{Type: controller.RouteTypeTCP, Port: 3432})
	env.gate.reopen()
	r4 := env.createRoute(t, &controller.Route{Type: controller.RouteTypeTCP, Port: 3433})
	for _, want := range []*controller.Route{r3, r4} {
		ev = nextEvent(t, events)
		if ev.Op != controller.OpCreate || ev.Route.ID != want.ID || ev.Route.Port != want.Port {
			t.Fatalf("event = %s %+v, want create of %s (port %d)", ev.Op, ev.Route, want.ID, want.Port)
		}
	}

	got := env.gate.resumedFrom()
	want := []string{"", strconv.FormatInt(created-1, 10), strconv.FormatInt(deleted, 10)}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("streams resumed from %q, want %q", got, want)
	}
}

// testRouterStartUp runs the real router on the Source while routes change
// around its first list: deleted before it, deleted after it, created and
// deleted before it, created after it. The router ends up with exactly the
// routes that exist.
func testRouterStartUp(t *testing.T, pg *pgtest.Server) {
	env := newControllerEnv(t, pg)
	a := env.createRoute(t, &controller.Route{Type: controller.RouteTypeHTTP, Domain: "a.test"})
	b := env.createRoute(t, &controller.Route{Type: controller.RouteTypeHTTP, Domain: "b.test"})
	env.createRoute(t, &controller.Route{Type: controller.RouteTypeHTTP, Domain: "c.test"})
	// The hooks run on the gate's handler goroutine, where t.Fatal may not
	// be called.
	ctx := context.Background()
	check := func(what string, err error) {
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	env.gate.beforeList = func() {
		check("delete a", env.admin.DeleteRoute(ctx, env.app.ID, a.ID))
		e := &controller.Route{Type: controller.RouteTypeHTTP, Domain: "e.test", Service: "web"}
		check("create e", env.admin.CreateRoute(ctx, env.app.ID, e))
		check("delete e", env.admin.DeleteRoute(ctx, env.app.ID, e.ID))
	}
	env.gate.afterList = func() {
		check("delete b", env.admin.DeleteRoute(ctx, env.app.ID, b.ID))
		check("create d", env.admin.CreateRoute(ctx, env.app.ID, &controller.Route{Type: controller.RouteTypeHTTP, Domain: "d.test", Service: "web"}))
	}

	rt, err := server.New(server.Config{HTTPAddrs: []string{"127.0.0.1:0"}}, New(env.front, testLogger()), noBackends{}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	tp := &http.Transport{}
	defer tp.CloseIdleConnections()
	hc := &http.Client{Transport: tp, Timeout: 10 * time.Second}
	status := func(host string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+rt.HTTPAddr().String()+"/", nil)
		req.Host = host
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", host, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// A routed host has no backends here (503); an unknown one is 404. d
	// was created last, so once it is served every earlier change is in.
	poll.Until(t, 10*time.Second, "d.test to be routed", func() bool { return status("d.test") == http.StatusServiceUnavailable })
	for host, want := range map[string]int{"a.test": 404, "b.test": 404, "c.test": 503, "d.test": 503, "e.test": 404} {
		if got := status(host); got != want {
			t.Errorf("GET %s = %d, want %d", host, got, want)
		}
	}
}

func testWrongKey(t *testing.T, pg *pgtest.Server) {
	ctrl := controllertest.New(t, pg.NewDatabase(t), controllertest.Options{Key: testKey})
	src := New(client.NewWithHTTPClient(ctrl.URL(), "wrong", ctrl.HTTP.Client()), testLogger())
	if _, err := src.Routes(context.Background()); err == nil {
		t.Error("Routes with a wrong key succeeded")
	}
	if _, err := src.WatchRoutes(context.Background()); err == nil {
		t.Error("WatchRoutes with a wrong key succeeded")
	}
}

// noBackends is a BackendSource under which every service has none.
type noBackends struct{}

func (noBackends) WatchBackends(ctx context.Context, service string) (<-chan []router.Backend, error) {
	ch := make(chan []router.Backend, 1)
	ch <- nil
	context.AfterFunc(ctx, func() { close(ch) })
	return ch, nil
}
