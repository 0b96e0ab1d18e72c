package routermetrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/router/server"
	"github.com/openflynn/flynn/router/staticconfig"
)

const testKey = "cluster-key"

// fakeDiscoverd lists fixed instances of Service, or fails with err.
type fakeDiscoverd struct {
	addrs []string
	err   error
}

func (f *fakeDiscoverd) Instances(_ context.Context, service string) ([]*discoverd.Instance, error) {
	if service != Service {
		return nil, fmt.Errorf("asked for service %q, want %q", service, Service)
	}
	if f.err != nil {
		return nil, f.err
	}
	var list []*discoverd.Instance
	for _, a := range f.addrs {
		list = append(list, &discoverd.Instance{ID: discoverd.InstanceID("http", a), Addr: a, Proto: "http"})
	}
	return list, nil
}

var _ InstanceLister = (*fakeDiscoverd)(nil)

// newClient is an HTTP client whose idle connections close when the test
// ends, so that no goroutine outlives it.
func newClient(t *testing.T) *http.Client {
	tp := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tp.CloseIdleConnections)
	return &http.Client{Transport: tp, Timeout: 10 * time.Second}
}

// startRouter runs a real router (router/server) with routes and their
// services' backends from a static configuration, its metrics behind
// testKey, until the test ends; it returns the router once it has its
// routes.
func startRouter(t *testing.T, file staticconfig.File) *server.Router {
	t.Helper()
	b, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "routes.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := staticconfig.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := server.New(server.Config{
		HTTPAddrs:   []string{"127.0.0.1:0"},
		HTTPSAddrs:  []string{},
		MetricsAddr: "127.0.0.1:0",
		MetricsKey:  testKey,
		StickyKey:   []byte("sticky"),
	}, src, src, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("router: %v", err)
		}
	})
	hc := newClient(t)
	health := "http://" + r.MetricsAddr().String() + "/health"
	poll.UntilNil(t, 10*time.Second, "the router has its routes", func() error {
		resp, err := hc.Get(health)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
	return r
}

// send makes n requests for host and path through router r and checks
// their status.
func send(t *testing.T, hc *http.Client, r *server.Router, host, path string, n, wantStatus int) {
	t.Helper()
	for range n {
		req, err := http.NewRequest(http.MethodGet, "http://"+r.HTTPAddr().String()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != wantStatus {
			t.Fatalf("GET %s%s: %s, want %d", host, path, resp.Status, wantStatus)
		}
	}
}

// deadAddr is an address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestScrapeRealRouters: two real routers proxy requests of an app's two
// routes and of another app's; the reading sums the app's routes over
// both routers, by status class and in one histogram, and counts the
// router that does not answer apart.
func TestScrapeRealRouters(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer backend.Close()
	file := staticconfig.File{
		Routes: []*controller.Route{
			{ID: "web", Type: "http", Domain: "shop.test", Service: "shop-web"},
			{ID: "api", Type: "http", Domain: "api.shop.test", Service: "shop-web"},
			{ID: "other", Type: "http", Domain: "other.test", Service: "other-web"},
		},
		Services: map[string][]string{
			"shop-web":  {backend.Listener.Addr().String()},
			"other-web": {backend.Listener.Addr().String()},
		},
	}
	r1, r2 := startRouter(t, file), startRouter(t, file)
	hc := newClient(t)
	send(t, hc, r1, "shop.test", "/", 3, http.StatusOK)
	send(t, hc, r1, "api.shop.test", "/fail", 1, http.StatusInternalServerError)
	send(t, hc, r2, "shop.test", "/", 2, http.StatusOK)
	send(t, hc, r2, "other.test", "/", 4, http.StatusOK)

	s := New(&fakeDiscoverd{addrs: []string{r1.MetricsAddr().String(), deadAddr(t), r2.MetricsAddr().String()}}, testKey, newClient(t))
	var m *controller.AppMetrics
	// A request's duration is counted once its answer has ended, a moment
	// after the client has read it.
	poll.UntilNil(t, 10*time.Second, "every duration counted", func() error {
		var err error
		if m, err = s.AppMetrics(t.Context(), []string{"web", "api"}); err != nil {
			return err
		}
		if m.DurationCount != 6 {
			return fmt.Errorf("duration_count %v, want 6", m.DurationCount)
		}
		return nil
	})
	if m.Routers != 2 || m.RoutersFailed != 1 {
		t.Errorf("routers %d, failed %d; want 2 and 1", m.Routers, m.RoutersFailed)
	}
	if m.Requests != 6 {
		t.Errorf("requests %v, want 6", m.Requests)
	}
	if want := map[string]float64{"2xx": 5, "5xx": 1}; !reflect.DeepEqual(nonZero(m.ByStatus), want) {
		t.Errorf("by status %v, want %v", nonZero(m.ByStatus), want)
	}
	wantBounds := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	if len(m.Duration) != len(wantBounds) {
		t.Fatalf("duration buckets %+v, want bounds %v", m.Duration, wantBounds)
	}
	for i, b := range m.Duration {
		if b.UpperBound != wantBounds[i] {
			t.Errorf("bucket %d: le %v, want %v", i, b.UpperBound, wantBounds[i])
		}
		if i > 0 && b.Count < m.Duration[i-1].Count {
			t.Errorf("bucket %d: count %v below the one before, %v", i, b.Count, m.Duration[i-1].Count)
		}
	}
	if last := m.Duration[len(m.Duration)-1].Count; last != 6 {
		t.Errorf("requests within 30s: %v, want 6", last)
	}
	if time.Since(m.Time) > time.Minute {
		t.Errorf("time %v is not the reading's", m.Time)
	}
	if _, err := json.Marshal(m); err != nil {
		t.Errorf("the reading does not encode: %v", err)
	}
}

// nonZero drops the classes counted zero times (the router exports a
// series per class as soon as a route is loaded).
func nonZero(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// Text-format fixtures of one router each.
const (
	fixtureA = `# TYPE flynn_router_requests_total counter
flynn_router_requests_total{route="web",service="s",status="2xx",target="a.test/"} 10
flynn_router_requests_total{route="web",service="s",status="499",target="a.test/"} 1
flynn_router_requests_total{route="not-ours",service="s",status="2xx",target="b.test/"} 100
# TYPE flynn_router_request_duration_seconds histogram
flynn_router_request_duration_seconds_bucket{route="web",service="s",target="a.test/",le="0.1"} 4
flynn_router_request_duration_seconds_bucket{route="web",service="s",target="a.test/",le="1"} 9
flynn_router_request_duration_seconds_bucket{route="web",service="s",target="a.test/",le="+Inf"} 11
flynn_router_request_duration_seconds_sum{route="web",service="s",target="a.test/"} 3.2
flynn_router_request_duration_seconds_count{route="web",service="s",target="a.test/"} 11
flynn_router_request_duration_seconds_bucket{route="not-ours",service="s",target="b.test/",le="0.1"} 100
flynn_router_request_duration_seconds_bucket{route="not-ours",service="s",target="b.test/",le="1"} 100
flynn_router_request_duration_seconds_bucket{route="not-ours",service="s",target="b.test/",le="+Inf"} 100
flynn_router_request_duration_seconds_sum{route="not-ours",service="s",target="b.test/"} 1
flynn_router_request_duration_seconds_count{route="not-ours",service="s",target="b.test/"} 100
`
	// fixtureB is a router of another version, with one more bucket.
	fixtureB = `# TYPE flynn_router_requests_total counter
flynn_router_requests_total{route="web",service="s",status="5xx",target="a.test/"} 2
# TYPE flynn_router_request_duration_seconds histogram
flynn_router_request_duration_seconds_bucket{route="web",service="s",target="a.test/",le="0.1"} 1
flynn_router_request_duration_seconds_bucket{route="web",service="s",target="a.test/",le="0.5"} 1
flynn_router_request_duration_seconds_bucket{route="web",service="s",target="a.test/",le="1"} 2
flynn_router_request_duration_seconds_bucket{route="web",service="s",target="a.test/",le="+Inf"} 2
flynn_router_request_duration_seconds_sum{route="web",service="s",target="a.test/"} 0.9
flynn_router_request_duration_seconds_count{route="web",service="s",target="a.test/"} 2
`
	// fixtureIdle is a router that has served none of the app's routes.
	fixtureIdle = "# TYPE go_goroutines gauge\ngo_goroutines 12\n"
)

// serveText serves body as a router's metrics behind testKey.
func serveText(t *testing.T, body string) string {
	hs := httptest.NewServer(authkey.Require(testKey, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, body)
	})))
	t.Cleanup(hs.Close)
	return hs.Listener.Addr().String()
}

// TestAppMetrics: what a reading sums and leaves out, from text fixtures.
func TestAppMetrics(t *testing.T) {
	a, b, idle := serveText(t, fixtureA), serveText(t, fixtureB), serveText(t, fixtureIdle)
	garbage := serveText(t, "this is { not metrics\n")
	// stalled answers only when the test ends, long after the timeout.
	stop := make(chan struct{})
	stalled := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-stop }))
	t.Cleanup(stalled.Close)
	t.Cleanup(func() { close(stop) })

	empty := func(routers, failed int) *controller.AppMetrics {
		return &controller.AppMetrics{Routers: routers, RoutersFailed: failed, ByStatus: map[string]float64{}, Duration: []controller.Bucket{}}
	}
	tests := []struct {
		name   string
		d      *fakeDiscoverd
		key    string
		routes []string
		want   *controller.AppMetrics
	}{
		{
			name:   "two routers, buckets both have",
			d:      &fakeDiscoverd{addrs: []string{a, b}},
			key:    testKey,
			routes: []string{"web"},
			want: &controller.AppMetrics{
				Routers:       2,
				Requests:      13,
				ByStatus:      map[string]float64{"2xx": 10, "499": 1, "5xx": 2},
				Duration:      []controller.Bucket{{UpperBound: 0.1, Count: 5}, {UpperBound: 1, Count: 11}},
				DurationCount: 13,
			},
		},
		{
			name:   "a router without the app's series",
			d:      &fakeDiscoverd{addrs: []string{b, idle}},
			key:    testKey,
			routes: []string{"web"},
			want: &controller.AppMetrics{
				Routers:       2,
				Requests:      2,
				ByStatus:      map[string]float64{"5xx": 2},
				Duration:      []controller.Bucket{{UpperBound: 0.1, Count: 1}, {UpperBound: 0.5, Count: 1}, {UpperBound: 1, Count: 2}},
				DurationCount: 2,
			},
		},
		{
			name:   "no routes: routers counted, nothing summed",
			d:      &fakeDiscoverd{addrs: []string{a, b}},
			key:    testKey,
			routes: nil,
			want:   empty(2, 0),
		},
		{
			name:   "routers that fail are left out",
			d:      &fakeDiscoverd{addrs: []string{b, garbage, stalled.Listener.Addr().String(), deadAddr(t)}},
			key:    testKey,
			routes: []string{"web"},
			want: &controller.AppMetrics{
				Routers:       1,
				RoutersFailed: 3,
				Requests:      2,
				ByStatus:      map[string]float64{"5xx": 2},
				Duration:      []controller.Bucket{{UpperBound: 0.1, Count: 1}, {UpperBound: 0.5, Count: 1}, {UpperBound: 1, Count: 2}},
				DurationCount: 2,
			},
		},
		{
			name:   "a wrong key",
			d:      &fakeDiscoverd{addrs: []string{a}},
			key:    "guess",
			routes: []string{"web"},
			want:   empty(0, 1),
		},
		{
			name:   "no router registered",
			d:      &fakeDiscoverd{err: httpjson.NotFound("no service %s", Service)},
			key:    testKey,
			routes: []string{"web"},
			want:   empty(0, 0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.d, tt.key, newClient(t))
			s.Timeout = 200 * time.Millisecond
			got, err := s.AppMetrics(t.Context(), tt.routes)
			if err != nil {
				t.Fatal(err)
			}
			if got.Time.IsZero() {
				t.Error("no time")
			}
			got.Time = time.Time{}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestAppMetricsDiscoverdDown: without the routers' list there is no
// reading.
func TestAppMetricsDiscoverdDown(t *testing.T) {
	down := errors.New("connection refused")
	_, err := New(&fakeDiscoverd{err: down}, testKey, nil).AppMetrics(t.Context(), []string{"web"})
	if !errors.Is(err, down) {
		t.Errorf("err %v, want it to wrap %v", err, down)
	}
}
