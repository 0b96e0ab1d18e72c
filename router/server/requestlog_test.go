package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/pkg/poll"
)

// fakeRequestLog is a RequestLogger that keeps the lines it is sent.
type fakeRequestLog struct {
	mu    sync.Mutex
	lines []logaggregator.Line
}

var _ RequestLogger = (*fakeRequestLog)(nil)

func (f *fakeRequestLog) Ship(l logaggregator.Line) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines = append(f.lines, l)
}

// with returns the lines whose data holds s.
func (f *fakeRequestLog) with(s string) []logaggregator.Line {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []logaggregator.Line
	for _, l := range f.lines {
		if strings.Contains(l.Data, s) {
			out = append(out, l)
		}
	}
	return out
}

// await returns the one line whose data holds s, waiting for it.
func (f *fakeRequestLog) await(t *testing.T, s string) logaggregator.Line {
	t.Helper()
	poll.Until(t, 5*time.Second, "a request line with "+s, func() bool { return len(f.with(s)) > 0 })
	lines := f.with(s)
	if len(lines) != 1 {
		t.Fatalf("%d lines with %s, want 1: %+v", len(lines), s, lines)
	}
	return lines[0]
}

var durationField = regexp.MustCompile(`duration=[0-9]+ms`)

// withoutDuration replaces a line's duration, which no test can know.
func withoutDuration(data string) string { return durationField.ReplaceAllString(data, "duration=Nms") }

// TestRequestLine writes lines of made-up exchanges and compares them
// byte for byte.
func TestRequestLine(t *testing.T) {
	start := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	end := start.Add(12*time.Millisecond + 700*time.Microsecond)
	proxied := func(x *exchange, _ *http.Request) {
		x.requestID, x.fwd, x.backend = "0123456789abcdefghij", "198.51.100.9, 203.0.113.7", "10.0.0.5:55012"
		x.status, x.bytes = 200, 1234
	}
	longFwd := strings.Repeat("192.0.2.1, ", 50) + "203.0.113.7"
	tests := []struct {
		name   string
		target string
		setup  func(*exchange, *http.Request)
		want   string
	}{
		{
			name:   "proxied",
			target: "/items?x=1",
			setup:  proxied,
			want:   `at=info method=GET path="/items?x=1" host=example.com request_id=0123456789abcdefghij fwd="198.51.100.9, 203.0.113.7" backend=10.0.0.5:55012 status=200 bytes=1234 duration=12ms protocol=https` + "\n",
		},
		{
			name:   "the router's own answer, no backend",
			target: "/",
			setup: func(x *exchange, _ *http.Request) {
				x.requestID, x.fwd = "0123456789abcdefghij", "203.0.113.7"
				x.failure = routerError{http.StatusServiceUnavailable, "H14", "No backends available"}
				x.status, x.bytes = x.failure.status, 84
			},
			want: `at=error code=H14 desc="No backends available" method=GET path="/" host=example.com request_id=0123456789abcdefghij fwd="203.0.113.7" status=503 bytes=84 duration=12ms protocol=https` + "\n",
		},
		{
			name:   "failed before the rewrite",
			target: "/",
			setup: func(x *exchange, _ *http.Request) {
				x.failure = routerError{http.StatusBadGateway, "H13", "Backend connection failed"}
				x.status = x.failure.status
			},
			want: `at=error code=H13 desc="Backend connection failed" method=GET path="/" host=example.com request_id="" fwd="192.0.2.1" status=502 bytes=0 duration=12ms protocol=https` + "\n",
		},
		{
			name:   "values that need quotes",
			target: "/",
			setup: func(x *exchange, req *http.Request) {
				proxied(x, req)
				req.Method, req.Host, req.RequestURI = "M=N", `a"b\c`, "/a b\"c\x00é"
			},
			want: `at=info method="M=N" path="/a b\"c\x00é" host="a\"b\\c" request_id=0123456789abcdefghij fwd="198.51.100.9, 203.0.113.7" backend=10.0.0.5:55012 status=200 bytes=1234 duration=12ms protocol=https` + "\n",
		},
		{
			name:   "long values cut",
			target: "/",
			setup: func(x *exchange, req *http.Request) {
				proxied(x, req)
				x.fwd = longFwd
				req.Host = strings.Repeat("h", 300)
				req.RequestURI = "/" + strings.Repeat("p", 5000)
			},
			want: `at=info method=GET path="/` + strings.Repeat("p", maxPathBytes-1) + `..." host="` + strings.Repeat("h", maxHostBytes) + `..." request_id=0123456789abcdefghij fwd="...` + longFwd[len(longFwd)-maxFwdBytes:] + `" backend=10.0.0.5:55012 status=200 bytes=1234 duration=12ms protocol=https` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &fakeRequestLog{}
			r := &Router{cfg: Config{RequestLog: log, JobID: "router-job", HostID: "host1"}}
			r.lineBuffers.New = func() any { return new([]byte) }
			x := &exchange{r: r, entry: &routeEntry{route: &controller.Route{ID: "r1", AppID: "app1"}}, proto: "https"}
			req := httptest.NewRequest(http.MethodGet, tt.target, nil)
			req.RemoteAddr = "192.0.2.1:40000"
			tt.setup(x, req)
			r.logRequest(x, req, start, end)
			if len(log.lines) != 1 {
				t.Fatalf("%d lines, want 1", len(log.lines))
			}
			got := log.lines[0]
			if got.Data != tt.want {
				t.Errorf("line:\n got %q\nwant %q", got.Data, tt.want)
			}
			want := logaggregator.Line{Time: end, AppID: "app1", ProcessType: logaggregator.ProcessTypeRouter, JobID: "router-job", HostID: "host1", Stream: logaggregator.StreamStdout, Data: got.Data}
			if got != want {
				t.Errorf("line = %+v, want %+v", got, want)
			}
		})
	}
}

// TestRequestLineStaysSmall: the longest request the router takes (64 KiB
// of headers, every byte in need of an escape) still makes a line of a
// few KiB.
func TestRequestLineStaysSmall(t *testing.T) {
	log := &fakeRequestLog{}
	r := &Router{cfg: Config{RequestLog: log}}
	r.lineBuffers.New = func() any { return new([]byte) }
	junk := strings.Repeat("\x01", 64<<10)
	x := &exchange{r: r, entry: &routeEntry{route: &controller.Route{AppID: "app1"}}, proto: "http",
		requestID: junk, fwd: junk, backend: junk, failure: routerError{502, "H13", "Backend connection failed"}}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Method, req.Host, req.RequestURI = junk, junk, junk
	r.logRequest(x, req, time.Now(), time.Now())
	if n := len(log.lines[0].Data); n > 8<<10 {
		t.Fatalf("line of %d bytes, want at most 8 KiB (logaggregator.MaxLineBytes is %d)", n, logaggregator.MaxLineBytes)
	}
}

// TestRequestLog sends requests through a router and checks the lines it
// ships: one per request of a route of an app, none for a route with
// NoRequestLog, a route of no app or a request no route matches.
func TestRequestLog(t *testing.T) {
	log := &fakeRequestLog{}
	tr := startRouter(t, Config{RequestLog: log, JobID: "router-job", HostID: "host1"})
	backend := namedBackend(t, "b1")
	tr.addHTTPRoute(t, &controller.Route{ID: "logged", AppID: "app-logged", Domain: "logged.test"}, backend)
	tr.addHTTPRoute(t, &controller.Route{ID: "quiet", AppID: "app-quiet", Domain: "quiet.test", NoRequestLog: true}, backend)
	tr.addHTTPRoute(t, &controller.Route{ID: "noapp", Domain: "noapp.test"}, backend)
	tr.addHTTPRoute(t, &controller.Route{ID: "empty", AppID: "app-empty", Domain: "empty.test"})
	refused := "127.0.0.1:" + strconv.Itoa(freePort(t))
	tr.backends.set("svc-refused", refused)
	tr.routes.set(&controller.Route{ID: "refused", AppID: "app-refused", Type: controller.RouteTypeHTTP, Domain: "refused.test", Service: "svc-refused"})
	poll.Until(t, 5*time.Second, "the refused route to answer 502", func() bool {
		resp, _ := tr.get(t, "refused.test", "/")
		return resp.StatusCode == http.StatusBadGateway
	})

	// One connection, so that each request's handler, and its line, is
	// done before the next request is read: once the last line is in,
	// every line there is to be is.
	tp := &http.Transport{MaxConnsPerHost: 1}
	t.Cleanup(tp.CloseIdleConnections)
	client := &http.Client{Transport: tp}
	send := func(host, target, id string) (int, int) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, tr.url(target), nil)
		req.Host = host
		req.Header.Set("X-Request-Id", id)
		req.Header.Set("X-Forwarded-For", "198.51.100.9")
		resp, body := do(t, client, req)
		return resp.StatusCode, len(body)
	}
	sent := time.Now()
	status, size := send("logged.test", "/items?x=1", "logged-request-000001")
	if status != http.StatusOK {
		t.Fatalf("logged.test answered %d", status)
	}
	send("quiet.test", "/", "quiet-request-0000001")
	send("noapp.test", "/", "noapp-request-0000001")
	send("unmatched.test", "/", "unmatched-request-001")
	_, emptySize := send("empty.test", "/", "empty-request-0000001")
	_, refusedSize := send("refused.test", "/", "refused-request-00001")

	backendAddr := backend.Listener.Addr().String()
	tests := []struct {
		id   string
		app  string
		want string
	}{
		{"logged-request-000001", "app-logged", `at=info method=GET path="/items?x=1" host=logged.test request_id=logged-request-000001 fwd="198.51.100.9, 127.0.0.1" backend=` + backendAddr + ` status=200 bytes=` + strconv.Itoa(size) + ` duration=Nms protocol=http` + "\n"},
		{"empty-request-0000001", "app-empty", `at=error code=H14 desc="No backends available" method=GET path="/" host=empty.test request_id=empty-request-0000001 fwd="198.51.100.9, 127.0.0.1" status=503 bytes=` + strconv.Itoa(emptySize) + ` duration=Nms protocol=http` + "\n"},
		{"refused-request-00001", "app-refused", `at=error code=H21 desc="Backend connection refused" method=GET path="/" host=refused.test request_id=refused-request-00001 fwd="198.51.100.9, 127.0.0.1" backend=` + refused + ` status=502 bytes=` + strconv.Itoa(refusedSize) + ` duration=Nms protocol=http` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.app, func(t *testing.T) {
			l := log.await(t, "request_id="+tt.id)
			if got := withoutDuration(l.Data); got != tt.want {
				t.Errorf("line:\n got %q\nwant %q", got, tt.want)
			}
			if l.AppID != tt.app || l.ProcessType != logaggregator.ProcessTypeRouter || l.JobID != "router-job" || l.HostID != "host1" ||
				l.Stream != logaggregator.StreamStdout || l.Time.Before(sent) || l.Time.After(time.Now()) {
				t.Errorf("line = %+v, want app %s's, of the router's job and host, on stdout, at the end of the request", l, tt.app)
			}
		})
	}
	for _, id := range []string{"quiet-request-0000001", "noapp-request-0000001", "unmatched-request-001"} {
		if lines := log.with(id); len(lines) != 0 {
			t.Errorf("request %s has lines %+v, want none", id, lines)
		}
	}
}

// TestRequestLogClientGone: a client that leaves before the backend
// answers has an at=error line with status 499.
func TestRequestLogClientGone(t *testing.T) {
	log := &fakeRequestLog{}
	tr := startRouter(t, Config{RequestLog: log})
	arrived := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			return
		}
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(slow.Close)
	tr.addHTTPRoute(t, &controller.Route{ID: "slow", AppID: "app-slow", Domain: "slow.test"}, slow)

	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tr.url("/slow"), nil)
	req.Host = "slow.test"
	req.Header.Set("X-Request-Id", "gone-request-00000001")
	errc := make(chan error, 1)
	go func() {
		resp, err := tr.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("request: %v, want it cancelled", err)
	}
	l := log.await(t, "request_id=gone-request-00000001")
	if !strings.HasPrefix(l.Data, `at=error code=H27 desc="Client request interrupted" method=GET path="/slow" `) || !strings.Contains(l.Data, " status=499 bytes=0 ") {
		t.Errorf("line = %q, want an H27 error with status 499", l.Data)
	}
}

// TestRequestLogTCP: a TCP route's connection has one line when it
// closes, with the bytes both ways; one no backend takes has an error line.
func TestRequestLogTCP(t *testing.T) {
	log := &fakeRequestLog{}
	tr := startRouter(t, Config{RequestLog: log})
	backend := tcpBackend(t, func(c net.Conn) {
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err == nil {
			c.Write([]byte("pong!"))
		}
	})
	port, emptyPort := freePort(t), freePort(t)
	tr.backends.set("svc-echo", backend)
	tr.routes.set(&controller.Route{ID: "echo", AppID: "app-echo", Type: controller.RouteTypeTCP, Port: port, Service: "svc-echo"})
	tr.routes.set(&controller.Route{ID: "empty", AppID: "app-empty", Type: controller.RouteTypeTCP, Port: emptyPort, Service: "svc-empty"})
	poll.Until(t, 5*time.Second, "the echo route's backend", func() bool {
		e := tr.table.Load().tcp[port]
		return e != nil && e.pool.size() == 1
	})

	c := dialRoute(t, "127.0.0.1:"+strconv.Itoa(port))
	c.Write([]byte("ping"))
	if b, err := io.ReadAll(c); err != nil || string(b) != "pong!" {
		t.Fatalf("echo route answered %q, %v", b, err)
	}
	c.Close()
	l := log.await(t, " port="+strconv.Itoa(port)+" ")
	want := `at=info port=` + strconv.Itoa(port) + ` fwd="127.0.0.1" backend=` + backend + ` bytes_in=4 bytes_out=5 duration=Nms protocol=tcp` + "\n"
	if got := withoutDuration(l.Data); got != want || l.AppID != "app-echo" || l.ProcessType != logaggregator.ProcessTypeRouter {
		t.Errorf("line = %+v (data %q), want app-echo's router line %q", l, got, want)
	}

	c = dialRoute(t, "127.0.0.1:"+strconv.Itoa(emptyPort))
	expectClosed(t, c, c, "a connection no backend takes")
	l = log.await(t, " port="+strconv.Itoa(emptyPort)+" ")
	want = `at=error code=H14 desc="No backends available" port=` + strconv.Itoa(emptyPort) + ` fwd="127.0.0.1" bytes_in=0 bytes_out=0 duration=Nms protocol=tcp` + "\n"
	if got := withoutDuration(l.Data); got != want || l.AppID != "app-empty" {
		t.Errorf("line = %+v (data %q), want app-empty's %q", l, got, want)
	}
}

// TestRequestLogRouteUpdate: turning a route's lines off (an update event,
// as `flynn route update --request-log=false` makes) stops them, and
// turning them on again brings them back.
func TestRequestLogRouteUpdate(t *testing.T) {
	log := &fakeRequestLog{}
	tr := startRouter(t, Config{RequestLog: log})
	backend := namedBackend(t, "b1")
	tr.addHTTPRoute(t, &controller.Route{ID: "r", AppID: "app", Domain: "r.test"}, backend)
	// One connection, so that a request's line is shipped before the
	// next request is read (see TestRequestLog).
	tp := &http.Transport{MaxConnsPerHost: 1}
	t.Cleanup(tp.CloseIdleConnections)
	client := &http.Client{Transport: tp}
	send := func(id string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, tr.url("/"), nil)
		req.Host = "r.test"
		req.Header.Set("X-Request-Id", id)
		do(t, client, req)
	}
	setting := func(off bool) {
		t.Helper()
		tr.routes.set(&controller.Route{ID: "r", AppID: "app", Type: controller.RouteTypeHTTP, Domain: "r.test", Service: "svc-r", NoRequestLog: off})
		poll.Until(t, 5*time.Second, "the route's new setting in the table", func() bool {
			e := tr.table.Load().lookup("r.test", "/")
			return e != nil && e.route.NoRequestLog == off
		})
	}

	setting(true)
	send("while-off-0000000001")
	setting(false)
	send("while-on-00000000001")
	log.await(t, "request_id=while-on-00000000001")
	if lines := log.with("while-off-0000000001"); len(lines) != 0 {
		t.Errorf("a request while the route's lines were off has lines %+v", lines)
	}
}
