package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/router"
)

func TestBackendDownLeavesPoolWithinOneSecond(t *testing.T) {
	tr := startRouter(t, Config{})
	a, b := namedBackend(t, "a"), namedBackend(t, "b")
	tr.addHTTPRoute(t, &controller.Route{ID: "r", Domain: "pool.test", Service: "pool"}, a, b)
	seen := map[string]bool{}
	poll.Until(t, 5*time.Second, "both backends to answer", func() bool {
		resp, _ := tr.get(t, "pool.test", "/")
		seen[backendOf(resp)] = true
		return seen["a"] && seen["b"]
	})

	tr.backends.set("pool", a.Listener.Addr().String())
	downAt := time.Now()
	poll.Until(t, 5*time.Second, "b to leave the pool", func() bool {
		return tr.table.Load().lookup("pool.test", "/").pool.size() == 1
	})
	if d := time.Since(downAt); d > time.Second {
		t.Errorf("b left the pool after %v, want within 1s", d)
	}
	for i := 0; i < 30; i++ {
		if resp, _ := tr.get(t, "pool.test", "/"); backendOf(resp) != "a" {
			t.Fatalf("request after b went down answered by %q", backendOf(resp))
		}
	}
}

// TestBackendDrain: a backend that leaves gets no new requests, and the
// request in flight on it completes.
func TestBackendDrain(t *testing.T) {
	tr := startRouter(t, Config{})
	started, release := make(chan struct{}, 1), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		w.Header().Set("X-Backend", "slow")
		io.WriteString(w, "finished")
	}))
	t.Cleanup(slow.Close)
	fast := namedBackend(t, "fast")
	tr.addHTTPRoute(t, &controller.Route{ID: "r", Domain: "drain.test", Service: "drain"}, slow)

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", tr.url("/slow"), nil)
		req.Host = "drain.test"
		resp, err := tr.client.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, string(b), err}
	}()
	<-started

	tr.backends.set("drain", fast.Listener.Addr().String())
	poll.Until(t, 5*time.Second, "the slow backend to be replaced", func() bool {
		resp, _ := tr.get(t, "drain.test", "/")
		return backendOf(resp) == "fast"
	})
	for i := 0; i < 20; i++ {
		if resp, _ := tr.get(t, "drain.test", "/"); backendOf(resp) != "fast" {
			t.Fatalf("new request went to %q after the slow backend left", backendOf(resp))
		}
	}
	close(release)
	r := <-done
	if r.err != nil || r.status != http.StatusOK || r.body != "finished" {
		t.Errorf("in-flight request on the leaving backend: %d %q %v, want 200 finished", r.status, r.body, r.err)
	}
}

// load runs GETs from several clients until stop is closed and counts what
// failed.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []string
	wg         sync.WaitGroup
	stop       chan struct{}
}

func startLoad(t *testing.T, tr *testRouter, host string, workers int) *load {
	l := &load{stop: make(chan struct{})}
	for i := 0; i < workers; i++ {
		client := newClient(t)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", tr.url("/"), nil)
				req.Host = host
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d from %q", resp.StatusCode, resp.Header.Get("X-Backend"))
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.failures) < 5 {
						l.failures = append(l.failures, err.Error())
					}
					l.mu.Unlock()
				} else {
					l.ok.Add(1)
				}
			}
		}()
	}
	return l
}

func (l *load) finish(t *testing.T, what string) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if l.ok.Load() == 0 {
		t.Fatalf("%s: no request succeeded", what)
	}
	if n := l.failed.Load(); n > 0 {
		t.Errorf("%s: %d of %d requests failed, e.g. %s", what, n, n+l.ok.Load(), strings.Join(l.failures, "; "))
	}
	t.Logf("%s: %d requests", what, l.ok.Load())
}

// waitRequests waits until the load made n more requests.
func (l *load) waitRequests(t *testing.T, n int64) {
	t.Helper()
	target := l.ok.Load() + l.failed.Load() + n
	poll.Until(t, 5*time.Second, fmt.Sprintf("%d more requests", n), func() bool { return l.ok.Load()+l.failed.Load() >= target })
}

// TestBackendKilledUnderLoad kills a backend (its connections cut, its port
// closed) before discoverd says so: GETs in flight on it and new ones that
// pick it are retried on the others, so no request fails.
func TestBackendKilledUnderLoad(t *testing.T) {
	tr := startRouter(t, Config{})
	a, b, victim := namedBackend(t, "a"), namedBackend(t, "b"), namedBackend(t, "victim")
	tr.addHTTPRoute(t, &controller.Route{ID: "r", Domain: "kill.test", Service: "kill"}, a, b, victim)

	l := startLoad(t, tr, "kill.test", 8)
	l.waitRequests(t, 300)
	victim.CloseClientConnections()
	victim.Listener.Close()
	l.waitRequests(t, 300)
	// discoverd notices later (its TTL); the router must already cope.
	tr.backends.set("kill", a.Listener.Addr().String(), b.Listener.Addr().String())
	l.waitRequests(t, 300)
	l.finish(t, "load while a backend died")
}

func TestRoutesChangeUnderLoad(t *testing.T) {
	tr := startRouter(t, Config{})
	steady, other := namedBackend(t, "steady"), namedBackend(t, "other")
	tr.addHTTPRoute(t, &controller.Route{ID: "steady", Domain: "steady.test"}, steady)
	l := startLoad(t, tr, "steady.test", 4)
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("churn-%d", i)
		tr.addHTTPRoute(t, &controller.Route{ID: id, Domain: id + ".test"}, other)
		// Also update the steady route's neighbour on the same host.
		tr.routes.set(&controller.Route{ID: "side", Type: "http", Domain: "steady.test", Path: fmt.Sprintf("/side%d", i), Service: "svc-side"})
		tr.routes.remove(id)
		removed := time.Now()
		poll.Until(t, 5*time.Second, id+" to be gone", func() bool {
			resp, _ := tr.get(t, id+".test", "/")
			return resp.StatusCode == http.StatusNotFound
		})
		if d := time.Since(removed); d > time.Second {
			t.Errorf("route %s removal took %v to apply, want within 1s", id, d)
		}
	}
	l.waitRequests(t, 100)
	l.finish(t, "load while routes changed")
}

// TestRouteSourceReconnect: when the route stream ends the router lists
// and watches again, and catches up with what changed meanwhile.
func TestRouteSourceRestart(t *testing.T) {
	src := &flakyRoutes{fakeRoutes: newFakeRoutes()}
	backends := newFakeBackends()
	r, err := New(Config{HTTPAddrs: []string{"127.0.0.1:0"}}, src, backends, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	src.fakeRoutes.set(&controller.Route{ID: "a", Type: "http", Domain: "a.test", Service: "s"})
	poll.Until(t, 5*time.Second, "route a", func() bool { return r.table.Load().lookup("a.test", "/") != nil })
	src.breakStreams()
	// Changed while the stream was down: seen through the new list.
	src.fakeRoutes.mu.Lock()
	src.fakeRoutes.routes["b"] = &controller.Route{ID: "b", Type: "http", Domain: "b.test", Service: "s"}
	src.fakeRoutes.mu.Unlock()
	poll.Until(t, 5*time.Second, "route b after the stream restarted", func() bool { return r.table.Load().lookup("b.test", "/") != nil })
}

// flakyRoutes is a fakeRoutes whose streams can be broken.
type flakyRoutes struct {
	*fakeRoutes
	mu      sync.Mutex
	cancels []context.CancelFunc
}

func (f *flakyRoutes) WatchRoutes(ctx context.Context) (<-chan router.RouteEvent, error) {
	ctx, cancel := context.WithCancel(ctx)
	f.mu.Lock()
	f.cancels = append(f.cancels, cancel)
	f.mu.Unlock()
	return f.fakeRoutes.WatchRoutes(ctx)
}

func (f *flakyRoutes) breakStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.cancels {
		c()
	}
	f.cancels = nil
}
