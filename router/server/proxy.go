package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// proxyBufferSize is the size of the buffers that copy response bodies.
const proxyBufferSize = 32 << 10

// bufferPool lends ReverseProxy its copy buffers, so that a proxied request
// does not allocate 32 KiB. It pools array pointers rather than slices: a
// slice put into a sync.Pool would itself be boxed into a new allocation.
type bufferPool struct{ p sync.Pool }

var _ httputil.BufferPool = (*bufferPool)(nil)

func (bp *bufferPool) Get() []byte {
	if v, ok := bp.p.Get().(*[proxyBufferSize]byte); ok {
		return v[:]
	}
	return new([proxyBufferSize]byte)[:]
}

func (bp *bufferPool) Put(b []byte) {
	if cap(b) >= proxyBufferSize {
		bp.p.Put((*[proxyBufferSize]byte)(b[:proxyBufferSize]))
	}
}

// dialError marks a failure to connect to a backend: the request never left
// the router, so it may go to another backend whatever its method.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect to backend: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// errNoBackends is returned for a route whose service has no live backend.
var errNoBackends = errors.New("no backends available")

// newTransport is the connection pool to backends, shared by every route.
func newTransport(cfg *Config) *http.Transport {
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &dialError{err: err}
			}
			return &keptConn{Conn: c}, nil
		},
		// Backends are few and busy: keep enough idle connections per
		// backend that a burst does not open (and then close) new ones.
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerBackend,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		// The client's Accept-Encoding goes through untouched; the proxy
		// must not add its own and decompress.
		DisableCompression: true,
		ReadBufferSize:     16 << 10,
		WriteBufferSize:    16 << 10,
	}
}

// keptConn is a connection to a backend that, before it writes a request
// on a connection an earlier request used, looks whether the backend closed
// it meanwhile, and then fails that write having written nothing.
// http.Transport learns of a closed kept connection only when its reading
// goroutine gets to run; a request sent on it in between fails, and one
// that cannot go again (a POST) would be a 502. A write that wrote nothing
// is one Transport retries, on a new connection, whatever the method.
type keptConn struct {
	net.Conn
	// answered is set by a read (the Transport's reader, reading an
	// answer) and cleared by the next write, which is then the start of
	// the next request.
	answered atomic.Bool
}

func (c *keptConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.answered.Store(true)
	}
	return n, err
}

func (c *keptConn) Write(p []byte) (int, error) {
	if c.answered.Swap(false) && peerClosed(c.Conn) {
		return 0, errKeptConnClosed
	}
	return c.Conn.Write(p)
}

// errBodyRead is the error of sending a request again whose body was
// read in part.
var errBodyRead = errors.New("the request body was read already")

// errKeptConnClosed is the error of a write on a kept connection that the
// backend closed.
var errKeptConnClosed = errors.New("backend closed the kept connection")

// routeTransport picks the backend of each request of its exchange's route
// and retries on another one where that is safe.
type routeTransport struct {
	x           *exchange
	transport   *http.Transport
	maxAttempts int
	// upgradeIdle is Config.TCPIdleTimeout, for upgraded connections.
	upgradeIdle time.Duration
}

var _ http.RoundTripper = (*routeTransport)(nil)

// RoundTrip sends req to a backend of the route. A request is retried on
// another backend when connecting failed (it never left the router), and,
// for idempotent requests without a body, after any other transport error.
func (t *routeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	e := t.x.entry
	var triedBuf [4]*backend
	tried := triedBuf[:0]
	var body *guardedBody
	if req.Body != nil && req.Body != http.NoBody {
		// The transport closes a request's body even when it could not
		// connect; the guard keeps the client's body readable for a retry.
		body = &guardedBody{rc: req.Body}
		req.Body = body
		// Transport sends a request again on a new connection when the
		// kept one it chose turned out closed before anything was
		// written (keptConn), if it can have the body again: it can, as
		// long as none of it was read.
		req.GetBody = func() (io.ReadCloser, error) {
			if body.read.Load() {
				return nil, errBodyRead
			}
			return body, nil
		}
	}
	retryAny := body == nil && idempotent(req.Method)
	var lastErr error
	for attempt := 0; attempt < t.maxAttempts; attempt++ {
		var b *backend
		stuck := false
		if e.route.Sticky {
			if b = stickyBackend(req, e, tried); b != nil {
				stuck = true
			}
		}
		if b == nil {
			b = pick(e.pool.list(), tried)
		}
		if b == nil {
			break
		}
		tried = append(tried, b)
		t.x.backend = b.addr
		out := req
		if attempt > 0 {
			// The transport may still look at the previous attempt's
			// request; give this one its own copy.
			out = req.Clone(req.Context())
		}
		out.URL.Host = b.addr
		b.inflight.Add(1)
		resp, err := t.transport.RoundTrip(out)
		if err == nil {
			trackBody(resp, b, t.upgradeIdle, &t.x.bytes)
			if e.route.Sticky && !stuck {
				setStickyCookie(resp.Header, e, b)
			}
			return resp, nil
		}
		b.inflight.Add(-1)
		lastErr = err
		if req.Context().Err() != nil {
			return nil, err
		}
		var de *dialError
		switch {
		case errors.As(err, &de):
			b.markFailed(time.Now())
			if body != nil && body.read.Load() {
				return nil, err
			}
		case retryAny:
		default:
			return nil, err
		}
	}
	if lastErr == nil {
		return nil, errNoBackends
	}
	return nil, lastErr
}

// idempotent reports whether a method may be sent twice (RFC 9110 §9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// guardedBody is a request body that the transport cannot close and that
// remembers whether any of it was read.
type guardedBody struct {
	rc   io.ReadCloser
	read atomic.Bool
}

func (g *guardedBody) Read(p []byte) (int, error) {
	g.read.Store(true)
	return g.rc.Read(p)
}

// Close does nothing: the server closes the client's body when the handler
// returns.
func (g *guardedBody) Close() error { return nil }

// trackBody keeps b's in-flight count up until the response body is closed,
// which ReverseProxy always does once it has copied the body (or, for an
// upgraded connection, once the connection ends), and adds the body's bytes
// to *bytes as ReverseProxy reads them (an upgraded connection's are not
// counted). An upgraded connection idle for upgradeIdle is closed.
func trackBody(resp *http.Response, b *backend, upgradeIdle time.Duration, bytes *int64) {
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		tc := &trackedConn{ReadWriteCloser: rwc, b: b}
		// Closing the backend's side is enough: ReverseProxy then ends
		// the copy and closes the client's.
		tc.watch = newIdleWatch(upgradeIdle, func() { _ = rwc.Close() })
		resp.Body = tc
		return
	}
	resp.Body = &trackedBody{ReadCloser: resp.Body, b: b, bytes: bytes}
}

type trackedBody struct {
	io.ReadCloser
	b *backend
	// bytes counts what was read; only ReverseProxy's copy, on the
	// handler's goroutine, reads.
	bytes *int64
	done  atomic.Bool
}

func (t *trackedBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	*t.bytes += int64(n)
	return n, err
}

func (t *trackedBody) Close() error {
	if t.done.CompareAndSwap(false, true) {
		t.b.inflight.Add(-1)
	}
	return t.ReadCloser.Close()
}

// trackedConn is trackedBody for upgraded connections, which ReverseProxy
// needs to be able to write to. Every byte between client and backend
// passes through its Read (backend to client) or Write (client to
// backend), which is where the idle watch learns of them: a hijacked
// connection has no deadline of the server's any more.
type trackedConn struct {
	io.ReadWriteCloser
	b     *backend
	watch *idleWatch
	done  atomic.Bool
}

func (t *trackedConn) Read(p []byte) (int, error) {
	n, err := t.ReadWriteCloser.Read(p)
	if n > 0 {
		t.watch.touch()
	}
	return n, err
}

func (t *trackedConn) Write(p []byte) (int, error) {
	n, err := t.ReadWriteCloser.Write(p)
	if n > 0 {
		t.watch.touch()
	}
	return n, err
}

func (t *trackedConn) Close() error {
	if t.done.CompareAndSwap(false, true) {
		t.watch.stop()
		t.b.inflight.Add(-1)
	}
	return t.ReadWriteCloser.Close()
}

// exchange carries one request through its route's reverse proxy. The
// proxy's hooks are methods of the exchange, so that they record what the
// request's line in the app's log tells (the request id, the backend, the
// status, the bytes) where the handler reads it once the proxy is done,
// without a context value (and the request copy that adding one takes).
// Exchanges are pooled (Router.exchanges): a request allocates none of
// this. Nothing of an exchange is used once ServeHTTP has returned: the
// transport's goroutines and an upgraded connection's copiers hold the
// request, its body and the backend, never the exchange.
type exchange struct {
	r         *Router
	proxy     httputil.ReverseProxy
	transport routeTransport

	// Set by begin for each request: its route and how the client
	// reached the router, as X-Forwarded-Proto and -Port tell the backend.
	entry       *routeEntry
	proto, port string

	// What became of the request, for its line in the app's log.
	// requestID and fwd are the X-Request-Id and X-Forwarded-For the
	// backend was sent; backend is the address of the last backend tried
	// ("" when none was); bytes counts the response body read from it.
	requestID, fwd string
	backend        string
	status         int
	bytes          int64
	// failure is the router's own answer, when it gave one.
	failure routerError
}

func (r *Router) newExchange() *exchange {
	x := &exchange{r: r}
	x.transport = routeTransport{x: x, transport: r.transport, maxAttempts: r.cfg.MaxAttempts, upgradeIdle: r.cfg.TCPIdleTimeout}
	x.proxy = httputil.ReverseProxy{
		Rewrite:    x.rewrite,
		Transport:  &x.transport,
		BufferPool: r.buffers,
		// Streaming responses (SSE, long polls, slow downloads) must reach
		// the client as they are written, whatever their length:
		// ReverseProxy flushes at once only for text/event-stream and
		// unknown lengths unless told to after every write.
		FlushInterval:  -1,
		ModifyResponse: x.modifyResponse,
		ErrorHandler:   x.proxyError,
	}
	return x
}

// begin readies a pooled exchange for a request of route e that came in
// on a listener of kind.
func (x *exchange) begin(e *routeEntry, kind int) {
	x.entry = e
	x.proto, x.port = "http", x.r.httpPort
	if kind == kindHTTPS {
		x.proto, x.port = "https", x.r.httpsPort
	}
	x.requestID, x.fwd, x.backend = "", "", ""
	x.status, x.bytes = 0, 0
	x.failure = routerError{}
}

func (x *exchange) rewrite(pr *httputil.ProxyRequest) {
	x.requestID, x.fwd = rewrite(pr, x.proto, x.port)
}

func (x *exchange) modifyResponse(resp *http.Response) error {
	x.status = resp.StatusCode
	x.entry.metrics.countStatus(resp.StatusCode)
	if id := x.requestID; id != "" && resp.Header.Get("X-Request-Id") == "" {
		resp.Header.Set("X-Request-Id", id)
	}
	return nil
}

func (x *exchange) proxyError(w http.ResponseWriter, req *http.Request, err error) {
	var n int
	x.failure, n = x.r.proxyError(w, req, x.entry, err)
	x.status, x.bytes = x.failure.status, int64(n)
}

// rewrite sets what the backend sees of the client: the X-Forwarded-*
// headers, the time the router got the request and its id. ReverseProxy
// itself removes hop-by-hop headers.
//
// X-Forwarded-For is appended to what the client sent, as Heroku does: the
// app may trust proxies in front of the router and read the chain. Proto
// and Port are set, whatever the client sent: they say how the client
// reached the router, which only the router knows, and an app that trusted
// a client's "https" would send cookies marked Secure, or skip its redirect
// to HTTPS, over plain HTTP. The other headers that make the same claim
// are dropped (see routerOwned).
//
// It returns the X-Request-Id and X-Forwarded-For the backend is sent.
func rewrite(pr *httputil.ProxyRequest, proto, port string) (requestID, forwardedFor string) {
	out, in := pr.Out, pr.In.Header
	out.URL.Scheme = "http"
	h := out.Header
	for k := range h {
		if routerOwned(k) || strings.IndexByte(k, '_') >= 0 && routerOwned(textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(k, "_", "-"))) {
			delete(h, k)
		}
	}
	forwardedFor = appendHeader(in["X-Forwarded-For"], clientIP(pr.In.RemoteAddr))
	h["X-Forwarded-For"] = []string{forwardedFor}
	h["X-Forwarded-Proto"] = []string{proto}
	h["X-Forwarded-Port"] = []string{port}
	h["X-Request-Start"] = []string{strconv.FormatInt(time.Now().UnixMilli(), 10)}
	ids := in["X-Request-Id"]
	if len(ids) != 1 || !saneRequestID(ids[0]) {
		ids = []string{newRequestID()}
	}
	h["X-Request-Id"] = ids
	return ids[0], forwardedFor
}

// routerOwned reports whether a client's header of this (canonical) name
// is dropped before the router sets its own: the headers the router sets,
// and those that, like X-Forwarded-Proto, claim how the client reached the
// router, which frameworks believe (Rack takes "X-Forwarded-Ssl: on" for
// HTTPS before it reads X-Forwarded-Proto). Their forms with underscores
// ("X_Forwarded_Proto") go too: CGI-style servers (Rack, WSGI, PHP) give
// both forms the same name, HTTP_X_FORWARDED_PROTO, and some let the
// client's win.
func routerOwned(name string) bool {
	switch name {
	case "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Request-Start", "X-Request-Id",
		"Forwarded", "X-Forwarded-Host", "X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Forwarded-Protocol", "Front-End-Https", "X-Url-Scheme":
		return true
	}
	return false
}

// appendHeader appends v to a list header's earlier values.
func appendHeader(prior []string, v string) string {
	switch len(prior) {
	case 0:
		return v
	case 1:
		return prior[0] + ", " + v
	}
	return strings.Join(prior, ", ") + ", " + v
}

func clientIP(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}

// saneRequestID accepts the ids Heroku and Flynn pass through: 20 to 200
// characters of [A-Za-z0-9+=/-]. Anything else is replaced, so that an id
// is long enough to be unique and safe in logs and headers.
func saneRequestID(id string) bool {
	if len(id) < 20 || len(id) > 200 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '+' || c == '/' || c == '=':
		default:
			return false
		}
	}
	return true
}

// newRequestID returns a random UUID-shaped id.
func newRequestID() string {
	var buf [36]byte
	return string(appendRequestID(buf[:0]))
}

// appendRequestID appends a random UUID-shaped id to dst. Request ids need
// to be unique, not secret, so the fast runtime generator serves.
func appendRequestID(dst []byte) []byte {
	const hexDigits = "0123456789abcdef"
	var raw [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		raw[i] = byte(hi >> (8 * i))
		raw[8+i] = byte(lo >> (8 * i))
	}
	raw[6] = raw[6]&0x0f | 0x40
	raw[8] = raw[8]&0x3f | 0x80
	for i, c := range raw {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0x0f])
	}
	return dst
}

// proxyError answers a request that could not be proxied, and returns
// that answer for the request's line, with the size of its body.
func (r *Router) proxyError(w http.ResponseWriter, req *http.Request, e *routeEntry, err error) (routerError, int) {
	// A failed body read cancels the request's context too, so a stalled
	// body is told apart first.
	fail := proxyFailure(err, bodyTimedOut(req, err), req.Context().Err() != nil)
	e.metrics.countStatus(fail.status)
	if fail.status == statusClientClosed {
		return fail, 0
	}
	r.logProxyError(req.Context(), e, fail, req.Host, req.URL.Path, err)
	msg := failureMessage(fail, e.route.Service)
	writeText(w, fail.status, msg)
	return fail, len(msg)
}

// statusClientClosed is nginx's name, in the metrics and the request's
// line, for a request whose client went away before its answer.
const statusClientClosed = 499

// proxyFailure is the router's answer to a request no backend answered,
// for its error and whether the client's body stalled or the client went
// away.
func proxyFailure(err error, bodyStalled, clientGone bool) routerError {
	var ne net.Error
	var de *dialError
	dial := errors.As(err, &de)
	switch {
	case errors.Is(err, errNoBackends):
		return routerError{http.StatusServiceUnavailable, "H14", "No backends available"}
	case bodyStalled:
		return routerError{http.StatusRequestTimeout, "H28", "Client request body stalled"}
	case clientGone:
		// Nobody reads an answer.
		return routerError{statusClientClosed, "H27", "Client request interrupted"}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, errResponseHeaderTimeout), errors.As(err, &ne) && ne.Timeout():
		if dial {
			return routerError{http.StatusGatewayTimeout, "H19", "Backend connection timeout"}
		}
		return routerError{http.StatusGatewayTimeout, "H12", "Request timeout"}
	case dial:
		return routerError{http.StatusBadGateway, "H21", "Backend connection refused"}
	}
	return routerError{http.StatusBadGateway, "H13", "Backend connection failed"}
}

// logProxyError logs a request the router answered itself.
func (r *Router) logProxyError(ctx context.Context, e *routeEntry, fail routerError, host, path string, err error) {
	level := slog.LevelWarn
	if fail.status == http.StatusServiceUnavailable || fail.status == http.StatusRequestTimeout {
		// Expected while an app is scaled to zero, and of clients on bad
		// links; the metrics count it.
		level = slog.LevelDebug
	}
	r.logger.Log(ctx, level, "proxy error", "route", e.route.ID, "service", e.route.Service, "host", host, "path", path, "status", fail.status, "err", err)
}

// failureMessage is the body of the router's own answer.
func failureMessage(fail routerError, service string) string {
	switch fail.status {
	case http.StatusServiceUnavailable:
		return "flynn-router: no backends available for this route (service " + strconv.Quote(service) + ")\n"
	case http.StatusGatewayTimeout:
		return "flynn-router: the backend did not answer in time\n"
	case http.StatusRequestTimeout:
		return "flynn-router: the request body stalled\n"
	}
	return "flynn-router: the backend could not be reached\n"
}

// bodyTimedOut reports whether a request failed because its client
// stalled in its body (deadlineBody). The error says so when the transport
// passes it on; when the failed read cancelled the request first, the
// transport reports the cancellation, and the body remembers.
func bodyTimedOut(req *http.Request, err error) bool {
	if errors.Is(err, errBodyTimeout) {
		return true
	}
	b, ok := req.Context().Value(deadlineBodyKey{}).(*deadlineBody)
	return ok && b.stalled()
}

func writeText(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}
