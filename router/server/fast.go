package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httputil"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// The fasthttp engine (Config.HTTPEngine "fasthttp", the default) serves
// HTTP/1.1, over plain TCP and TLS, with github.com/valyala/fasthttp: a
// server that reuses each request's state instead of allocating it, and
// serves a connection's requests without handing them between goroutines.
// It speaks to backends through upstream.go. HTTPS connections that
// negotiate h2 by ALPN are handed to net/http's HTTP/2 server and the
// net/http engine's handler (httpHandler).
//
// A request's journey:
//
//	serve: route lookup (no allocation) ─▶ fastExchange from a pool
//	  ─▶ proxy: backend by sticky cookie or two choices; the request line
//	     and headers written straight into the backend connection's
//	     buffer (hop-by-hop and router-owned headers left out, the
//	     router's own added), the body streamed after them
//	  ─▶ the backend's response header read into the response to the client
//	  ─▶ a body that came whole with its header is copied into the
//	     response and the backend connection goes back to its idle list
//	     at once; any other is streamed (fastBody) as it arrives, each
//	     read written on to the client at once, so that Server-Sent
//	     Events and long polls are not held back
//	  ─▶ end: metrics, the request's line, the exchange back to its pool

// HTTP engines (Config.HTTPEngine).
const (
	EngineFastHTTP = "fasthttp"
	EngineNetHTTP  = "net/http"
)

// fastCopyBufferSize is the buffer a streamed response body is copied
// through: large enough that a 100 KB body takes two reads and two writes.
const fastCopyBufferSize = 64 << 10

// b2s is the string of b without a copy: for lookups and writes that do
// not keep it past the request that owns b.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// fastHandler serves one listener kind (HTTP or HTTPS) with fasthttp.
type fastHandler struct {
	r    *Router
	kind int
}

func (r *Router) newFastServer(kind int) *fasthttp.Server {
	h := &fastHandler{r: r, kind: kind}
	return &fasthttp.Server{
		Handler:        h.serve,
		ErrorHandler:   h.serveError,
		HeaderReceived: h.headerReceived,
		// A request's headers must fit in the read buffer: that makes it
		// the header limit (431 beyond it).
		ReadBufferSize:  r.cfg.MaxHeaderBytes,
		WriteBufferSize: 16 << 10,
		// ReadTimeout bounds a new connection's wait for its first
		// request and the reading of each request's headers; the body's
		// reads have their own (headerReceived, fastBodyReader).
		ReadTimeout: r.cfg.ReadHeaderTimeout,
		IdleTimeout: r.cfg.IdleTimeout,
		// Bodies are streamed to the backend as they come, never held
		// whole (fasthttp reads at most 8 KiB ahead).
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		// The backend's answer goes out as it was: no Server, Date or
		// Content-Type of the router's own.
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
		CloseOnShutdown:       true,
		// The worker pool's cleaner notices that the server stopped
		// only when it next wakes: wake it often, so that it ends soon
		// after Run (and the goroutine check of tests that start a
		// router passes). An idle worker lives as long, which costs a
		// goroutine start now and then.
		MaxIdleWorkerDuration: 100 * time.Millisecond,
		Logger:                fastLogger{r.logger},
	}
}

// fastLogger passes fasthttp's own messages (broken connections and the
// like) to the router's log at debug level.
type fastLogger struct{ l *slog.Logger }

func (f fastLogger) Printf(format string, args ...any) {
	if f.l.Enabled(context.Background(), slog.LevelDebug) {
		f.l.Debug("fasthttp", "msg", fmt.Sprintf(format, args...))
	}
}

// headerReceived gives a request with a body Config.BodyReadTimeout for
// the part of it fasthttp reads before the handler (up to 8 KiB); the
// rest is read by fastBodyReader, with the same bound per read.
func (h *fastHandler) headerReceived(hdr *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if cl := hdr.ContentLength(); cl > 0 || cl == -1 {
		return fasthttp.RequestConfig{ReadTimeout: h.r.cfg.BodyReadTimeout}
	}
	return fasthttp.RequestConfig{}
}

// serveError answers a request fasthttp could not read. Headers larger
// than the read buffer get 431, as net/http answers them; a body that
// stalled before the handler got 408 and, when a route matches, its line.
func (h *fastHandler) serveError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.As(err, &small):
		ctx.SetConnectionClose()
		fastText(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "flynn-router: request headers too large\n")
	case errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded):
		// fasthttp answers whatever comes: a client that stalled in its
		// headers gets 408 too, and one whose headers came and matched a
		// route stalled in its body, which has a line.
		ctx.SetConnectionClose()
		e := h.r.table.Load().lookup(b2s(ctx.Request.Header.Host()), b2s(ctx.Path()))
		if e == nil || len(ctx.Request.Header.Method()) == 0 {
			fastText(ctx, fasthttp.StatusRequestTimeout, "flynn-router: the request timed out\n")
			return
		}
		fail := routerError{fasthttp.StatusRequestTimeout, "H28", "Client request body stalled"}
		msg := failureMessage(fail, "")
		fastText(ctx, fail.status, msg)
		e.metrics.countStatus(fail.status)
		x := h.r.fastExchanges.Get().(*fastExchange)
		h.r.active.Add(1)
		x.begin(ctx, e, h.kind, time.Now())
		x.facts.status, x.facts.bytes, x.facts.failure = fail.status, int64(len(msg)), fail
		x.end()
	default:
		ctx.SetConnectionClose()
		fastText(ctx, fasthttp.StatusBadRequest, "flynn-router: bad request\n")
	}
}

func (h *fastHandler) serve(ctx *fasthttp.RequestCtx) {
	r := h.r
	start := time.Now()
	host, path := b2s(ctx.Request.Header.Host()), b2s(ctx.Path())
	e := r.table.Load().lookup(host, path)
	if e == nil {
		if !r.synced.Load() {
			fastText(ctx, fasthttp.StatusServiceUnavailable, "flynn-router: routes not loaded yet\n")
			ctx.Response.Header.Set("Retry-After", "1")
			return
		}
		r.metrics.unmatched.Inc()
		fastText(ctx, fasthttp.StatusNotFound, "flynn-router: no route matches host "+strconv.Quote(host)+" and path "+strconv.Quote(path)+"\n")
		return
	}
	r.active.Add(1)
	x := r.fastExchanges.Get().(*fastExchange)
	x.begin(ctx, e, h.kind, start)
	if !x.proxy() {
		x.end()
	}
}

// fastText answers with a plain-text message of the router's own, in place
// of whatever a backend's answer had put in the response. It clears the
// header field by field: Header.Reset would also undo the server's
// settings (NoDefaultDate, which keeps fasthttp's process-wide Date
// ticker from starting).
func fastText(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.Response.ResetBody()
	h := &ctx.Response.Header
	var namesBuf [32]string
	names := namesBuf[:0]
	for k := range h.All() {
		names = append(names, string(k))
	}
	for _, k := range names {
		h.Del(k)
	}
	h.SetStatusMessage(nil)
	h.SetStatusCode(status)
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.Response.SetBodyString(msg)
}

// header is one request header as the client sent it.
type header struct{ key, value []byte }

// fastExchange carries one request through the fasthttp engine. It is
// pooled (Router.fastExchanges); a streamed response or an upgraded
// connection keeps it past serve, until its end.
type fastExchange struct {
	r     *Router
	ctx   *fasthttp.RequestCtx
	entry *routeEntry
	start time.Time
	port  string

	// The request's headers, and what the router takes from them.
	headers []header
	// upgrade is the Upgrade header of a request asking for one (a
	// websocket), else nil.
	upgrade []byte
	// sendLength is whether the backend is told Content-Length: 0 for
	// a request with no body (one that had it, or a method that
	// carries a body: net/http sends it for those too).
	sendLength bool
	idBuf      []byte
	fwdBuf     []byte

	// b is the backend the request went to, counted in its in-flight
	// requests until end; uc the connection to it.
	b  *backend
	uc *upstreamConn
	// backendClose is set when the backend said it closes the
	// connection after this response.
	backendClose bool
	body         fastBody
	facts        requestFacts
}

func (r *Router) newFastExchange() *fastExchange {
	x := &fastExchange{r: r, headers: make([]header, 0, 32), idBuf: make([]byte, 0, 64), fwdBuf: make([]byte, 0, 64)}
	x.body.x = x
	return x
}

func (x *fastExchange) begin(ctx *fasthttp.RequestCtx, e *routeEntry, kind int, start time.Time) {
	x.ctx, x.entry, x.start = ctx, e, start
	x.facts = requestFacts{proto: "http"}
	x.port = x.r.httpPort
	if kind == kindHTTPS {
		x.facts.proto, x.port = "https", x.r.httpsPort
	}
}

// end records the request (metrics, its line) and returns the exchange to
// its pool.
func (x *fastExchange) end() {
	r := x.r
	now := time.Now()
	x.entry.metrics.duration.Observe(now.Sub(x.start).Seconds())
	if x.b != nil {
		x.b.inflight.Add(-1)
	}
	if r.cfg.RequestLog != nil && logsRequests(x.entry.route) {
		hdr := &x.ctx.Request.Header
		x.facts.method, x.facts.target, x.facts.host = b2s(hdr.Method()), b2s(hdr.RequestURI()), b2s(hdr.Host())
		x.facts.requestID, x.facts.fwd = b2s(x.idBuf), b2s(x.fwdBuf)
		if x.facts.fwd == "" {
			x.facts.clientAddr = x.ctx.RemoteAddr().String()
		}
		r.writeRequestLine(x.entry.route, &x.facts, x.start, now)
	}
	clear(x.headers)
	x.headers, x.upgrade = x.headers[:0], nil
	x.idBuf, x.fwdBuf = x.idBuf[:0], x.fwdBuf[:0]
	x.ctx, x.entry, x.b, x.uc = nil, nil, nil, nil
	x.facts = requestFacts{}
	r.fastExchanges.Put(x)
	r.active.Add(-1)
}

// proxy sends the request to a backend and readies the response. It
// reports whether the exchange lives on (a streamed body, an upgraded
// connection), in which case whatever carries it calls end.
func (x *fastExchange) proxy() bool {
	r, e, ctx := x.r, x.entry, x.ctx
	x.readHeaders()
	cl := ctx.Request.Header.ContentLength()
	hasBody := cl > 0 || cl == -1
	retryAny := !hasBody && idempotent(b2s(ctx.Method()))
	var triedBuf [4]*backend
	tried := triedBuf[:0]
	bodyRead := false
	var lastErr error
	stuck := false
attempts:
	for attempt := 0; attempt < r.cfg.MaxAttempts; attempt++ {
		var b *backend
		if e.route.Sticky {
			if b = x.stickyBackend(tried); b != nil {
				stuck = true
			}
		}
		if b == nil {
			stuck = false
			b = pick(e.pool.list(), tried)
		}
		if b == nil {
			break
		}
		tried = append(tried, b)
		x.facts.backend = b.addr
		b.inflight.Add(1)
		err := x.exchangeWith(b, cl, retryAny, &bodyRead)
		if err == nil {
			x.b = b
			return x.respond(stuck)
		}
		b.inflight.Add(-1)
		lastErr = err
		var de *dialError
		switch {
		case errors.Is(err, errClientGone), errors.Is(err, errBodyTimeout):
			break attempts
		case errors.As(err, &de):
			b.markFailed(time.Now())
			if bodyRead {
				break attempts
			}
		case retryAny:
		default:
			break attempts
		}
	}
	if lastErr == nil {
		lastErr = errNoBackends
	}
	x.fail(lastErr)
	return false
}

// exchangeWith sends the request to b and reads its response's header. A
// kept connection that turns out to have been closed by the backend while
// it was idle is replaced by a new one, when the request may go again.
func (x *fastExchange) exchangeWith(b *backend, cl int, retryAny bool, bodyRead *bool) error {
	// A GET on a connection the backend closed goes again on a new one
	// (below); a POST cannot, so its connection is looked at first.
	uc, err := x.r.upstream.get(b, !retryAny)
	if err != nil {
		return err
	}
	for {
		err = x.roundTrip(uc, cl, bodyRead)
		if err == nil {
			x.uc = uc
			return nil
		}
		if uc.failure != nil {
			// fasthttp's header reader does not wrap what it got.
			err = uc.failure
		}
		uc.close()
		if !uc.reused || !(retryAny || !*bodyRead) || !staleConn(err) {
			return err
		}
		if uc, err = x.r.upstream.dial(b); err != nil {
			return err
		}
	}
}

// staleConn reports whether err is what a kept connection the backend
// closed while it was idle gives.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (x *fastExchange) roundTrip(uc *upstreamConn, cl int, bodyRead *bool) error {
	if err := uc.watch(x.ctx.Conn(), time.Now().Add(x.r.cfg.ResponseHeaderTimeout)); err != nil {
		return err
	}
	x.writeHead(uc.bw, cl)
	if cl != 0 && cl != -2 {
		*bodyRead = true
		if err := x.copyBody(uc.bw, cl); err != nil {
			return err
		}
	}
	if err := uc.bw.Flush(); err != nil {
		return err
	}
	return x.readResponseHeader(uc)
}

// readHeaders takes the request's headers as the client sent them and
// works out the X-Forwarded-For and X-Request-Id the backend is sent.
func (x *fastExchange) readHeaders() {
	hdr := &x.ctx.Request.Header
	raw := hdr.RawHeaders()
	var priorFwd [][]byte
	var fwdBuf [4][]byte
	priorFwd = fwdBuf[:0]
	var clientID []byte
	ids := 0
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		c := bytes.IndexByte(line, ':')
		if c <= 0 {
			continue
		}
		k, v := line[:c], bytes.TrimRight(bytes.TrimLeft(line[c+1:], " \t"), " \t\r")
		// Only the names as spelt: "X_Forwarded_For" is dropped, not
		// believed.
		switch {
		case bytes.IndexByte(k, '_') >= 0:
		case nameIs(k, "X-Forwarded-For"):
			priorFwd = append(priorFwd, v)
		case nameIs(k, "X-Request-Id"):
			ids++
			clientID = v
		}
		x.headers = append(x.headers, header{k, v})
	}
	x.fwdBuf = x.fwdBuf[:0]
	for _, v := range priorFwd {
		x.fwdBuf = append(x.fwdBuf, v...)
		x.fwdBuf = append(x.fwdBuf, ", "...)
	}
	if ta, ok := x.ctx.RemoteAddr().(*net.TCPAddr); ok {
		x.fwdBuf = ta.AddrPort().Addr().Unmap().AppendTo(x.fwdBuf)
	} else {
		x.fwdBuf = append(x.fwdBuf, clientIP(x.ctx.RemoteAddr().String())...)
	}
	if ids == 1 && saneRequestID(b2s(clientID)) {
		x.idBuf = append(x.idBuf[:0], clientID...)
	} else {
		x.idBuf = appendRequestID(x.idBuf[:0])
	}
	if hdr.ConnectionUpgrade() {
		if up := hdr.Peek("Upgrade"); len(up) > 0 {
			x.upgrade = up
		}
	}
	m := hdr.Method()
	x.sendLength = len(hdr.Peek("Content-Length")) > 0 || b2s(m) == "POST" || b2s(m) == "PUT" || b2s(m) == "PATCH"
}

// writeHead writes the request line and headers the backend is sent.
func (x *fastExchange) writeHead(bw *bufio.Writer, cl int) {
	hdr := &x.ctx.Request.Header
	bw.Write(hdr.Method())
	bw.WriteByte(' ')
	bw.Write(originForm(hdr.RequestURI()))
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.Write(hdr.Host())
	bw.WriteString("\r\n")
	var connTokens [][]byte
	for _, h := range x.headers {
		if nameIs(h.key, "Connection") {
			connTokens = appendTokens(connTokens, h.value)
		}
	}
	for _, h := range x.headers {
		if skipRequestHeader(h.key) || listed(connTokens, h.key) {
			continue
		}
		bw.Write(h.key)
		bw.WriteString(": ")
		bw.Write(h.value)
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Forwarded-For: ")
	bw.Write(x.fwdBuf)
	bw.WriteString("\r\nX-Forwarded-Proto: ")
	bw.WriteString(x.facts.proto)
	bw.WriteString("\r\nX-Forwarded-Port: ")
	bw.WriteString(x.port)
	bw.WriteString("\r\nX-Request-Start: ")
	bw.Write(strconv.AppendInt(bw.AvailableBuffer(), time.Now().UnixMilli(), 10))
	bw.WriteString("\r\nX-Request-Id: ")
	bw.Write(x.idBuf)
	bw.WriteString("\r\n")
	if x.upgrade != nil {
		bw.WriteString("Connection: Upgrade\r\nUpgrade: ")
		bw.Write(x.upgrade)
		bw.WriteString("\r\n")
	}
	switch {
	case cl == -1:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case cl > 0 || x.sendLength:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(max(cl, 0)), 10))
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
}

// originForm is the path and query of a request target: a proxy's client
// may send the absolute form ("http://host/path"), which a backend is not
// sent.
func originForm(uri []byte) []byte {
	if len(uri) == 0 || uri[0] == '/' || uri[0] == '*' {
		return uri
	}
	i := bytes.Index(uri, []byte("://"))
	if i < 0 {
		return uri
	}
	rest := uri[i+3:]
	if j := bytes.IndexByte(rest, '/'); j >= 0 {
		return rest[j:]
	}
	if j := bytes.IndexByte(rest, '?'); j >= 0 {
		return append([]byte("/"), rest[j:]...)
	}
	return []byte("/")
}

// skipRequestHeader reports whether a client's header is left out of the
// request to the backend: hop-by-hop headers (RFC 9110 §7.6.1), those the
// router writes itself (Host, the body's framing, and routerOwned, in
// either spelling), and Expect, which the router has answered already.
func skipRequestHeader(k []byte) bool {
	return anyName(k, hopOrFramingNames[:]) || anyName(k, routerOwnedNames[:])
}

// hopOrFramingNames are the hop-by-hop headers and those that frame or
// address the request, which the router writes itself.
var hopOrFramingNames = [...]string{
	"Te", "Host", "Expect", "Trailer", "Upgrade", "Connection", "Keep-Alive", "Content-Length",
	"Proxy-Connection", "Transfer-Encoding", "Proxy-Authenticate", "Proxy-Authorization",
}

// anyName reports whether header name k is one of names, in any case, with
// '_' taken for '-'.
func anyName(k []byte, names []string) bool {
	for _, name := range names {
		if len(k) == len(name) && nameIs(k, name) {
			return true
		}
	}
	return false
}

// routerOwnedNames are the names routerOwned reports.
var routerOwnedNames = [...]string{
	"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Request-Start", "X-Request-Id",
	"Forwarded", "X-Forwarded-Host", "X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Forwarded-Protocol", "Front-End-Https", "X-Url-Scheme",
}

// nameIs reports whether header name k is name, ignoring ASCII case and
// taking '_' in k for '-'.
func nameIs(k []byte, name string) bool {
	if len(k) != len(name) {
		return false
	}
	for i := 0; i < len(k); i++ {
		c, n := k[i], name[i]
		if c == n {
			continue
		}
		if c == '_' && n == '-' {
			continue
		}
		if c|0x20 != n|0x20 || c|0x20 < 'a' || c|0x20 > 'z' {
			return false
		}
	}
	return true
}

// appendTokens appends the comma-separated tokens of a Connection header.
func appendTokens(dst [][]byte, v []byte) [][]byte {
	for len(v) > 0 {
		tok := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		if tok = bytes.TrimSpace(tok); len(tok) > 0 {
			dst = append(dst, tok)
		}
	}
	return dst
}

// listed reports whether header k is named by a Connection token.
func listed(tokens [][]byte, k []byte) bool {
	for _, t := range tokens {
		if len(t) == len(k) && bytes.EqualFold(t, k) {
			return true
		}
	}
	return false
}

// copyBody streams the client's body to the backend: cl bytes, or chunks
// until its end when cl is -1.
func (x *fastExchange) copyBody(bw *bufio.Writer, cl int) error {
	src := x.ctx.RequestBodyStream()
	if src == nil {
		return nil
	}
	body := fastBodyReader{src: src, conn: x.ctx.Conn(), timeout: x.r.cfg.BodyReadTimeout}
	if x.r.cfg.ReadTimeout > 0 {
		body.limit = x.start.Add(x.r.cfg.ReadTimeout)
	}
	if cl > 0 {
		n, err := bw.ReadFrom(io.LimitReader(&body, int64(cl)))
		if err == nil && n < int64(cl) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	buf := x.r.buffers.Get()
	defer x.r.buffers.Put(buf)
	cw := chunkedWriter{w: bw}
	if _, err := io.CopyBuffer(cw, &body, buf); err != nil {
		return err
	}
	return cw.close()
}

// fastBodyReader is a request body each of whose reads must return within
// timeout (Config.BodyReadTimeout), as deadlineBody is for the net/http
// engine, and all of them by limit when it is set (Config.ReadTimeout).
type fastBodyReader struct {
	src     io.Reader
	conn    net.Conn
	timeout time.Duration
	limit   time.Time
	set     time.Time
}

func (b *fastBodyReader) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(b.set) > b.timeout/16 {
		d := now.Add(b.timeout)
		if !b.limit.IsZero() && d.After(b.limit) {
			d = b.limit
		}
		if b.conn.SetReadDeadline(d) == nil {
			b.set = now
		}
	}
	n, err := b.src.Read(p)
	if err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err)) {
		err = errBodyTimeout
	}
	return n, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readResponseHeader reads the backend's response header into the
// client's response, passing over interim (1xx) answers but 101.
func (x *fastExchange) readResponseHeader(uc *upstreamConn) error {
	h := &x.ctx.Response.Header
	for i := 0; ; i++ {
		if err := h.Read(uc.br); err != nil {
			return err
		}
		if st := h.StatusCode(); st >= 200 || st == fasthttp.StatusSwitchingProtocols || st < 100 {
			break
		}
		if i == 10 {
			return errors.New("too many interim responses")
		}
	}
	h.SetNoDefaultContentType(true)
	uc.headerDeadline = time.Time{}
	return nil
}

// respond readies the client's response from the backend's, whose header
// is read. It reports whether the exchange lives on.
func (x *fastExchange) respond(stuck bool) bool {
	ctx, e := x.ctx, x.entry
	h := &ctx.Response.Header
	status := h.StatusCode()
	x.facts.status = status
	e.metrics.countStatus(status)
	if x.upgrade != nil && status == fasthttp.StatusSwitchingProtocols {
		x.hijack()
		return true
	}
	x.backendClose = h.ConnectionClose()
	if x.backendClose {
		h.ResetConnectionClose()
	}
	dropHopHeaders(h)
	if len(h.Peek("X-Request-Id")) == 0 {
		h.SetBytesV("X-Request-Id", x.idBuf)
	}
	if e.route.Sticky && !stuck {
		h.Add("Set-Cookie", stickyCookie(e, x.b).String())
	}
	uc := x.uc
	cl := h.ContentLength()
	if ctx.IsHead() || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified || status < 200 {
		ctx.Response.SkipBody = true
		x.releaseUpstream(true)
		return false
	}
	if cl >= 0 && uc.br.Buffered() >= cl {
		// The whole body came with the header: the common small answer.
		b, _ := uc.br.Peek(cl)
		ctx.Response.SetBody(b)
		_, _ = uc.br.Discard(cl)
		x.facts.bytes = int64(cl)
		x.releaseUpstream(true)
		return false
	}
	if cl == -1 && uc.br.Buffered() > 0 {
		// A small chunked answer has all its chunks in hand with its
		// header, too: it goes out whole, with a Content-Length.
		in, _ := uc.br.Peek(uc.br.Buffered())
		if used, ok := walkChunked(in, nil); ok {
			walkChunked(in, &ctx.Response)
			x.facts.bytes = int64(len(ctx.Response.Body()))
			_, _ = uc.br.Discard(used)
			x.releaseUpstream(true)
			return false
		}
	}
	x.body.begin(cl)
	// The header goes out now, before any of the body: a client may wait
	// for it alone (an event stream with no event yet, which the CLI opens
	// before each change, waited for the stream's first keepalive), and a
	// Content-Length body is then written straight to the client as it
	// comes (fastBody.WriteTo).
	ctx.Response.ImmediateHeaderFlush = true
	if cl < 0 {
		cl = -1
	}
	ctx.Response.SetBodyStream(&x.body, cl)
	return true
}

// walkChunked reads a chunked body that is wholly in buf, from its first
// chunk's size line to the empty line after its last chunk, and reports
// how many bytes of buf it took; ok is false when buf holds less, when the
// body has trailer fields (which the streaming copy passes on), or when it
// is malformed (which the streaming copy reports). With resp, it appends
// the chunks' data to resp's body.
func walkChunked(buf []byte, resp *fasthttp.Response) (used int, ok bool) {
	i := 0
	for {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 1 || buf[i+j-1] != '\r' {
			return 0, false
		}
		line := buf[i : i+j-1]
		i += j + 1
		if bytes.IndexByte(line, '\r') >= 0 {
			return 0, false
		}
		// As net/http reads it: blanks at the end go, then a chunk
		// extension (which means nothing here).
		line = bytes.TrimRight(line, " \t")
		if k := bytes.IndexByte(line, ';'); k >= 0 {
			line = line[:k]
		}
		if len(line) == 0 || len(line) > 8 {
			return 0, false
		}
		size := 0
		for _, c := range line {
			switch {
			case '0' <= c && c <= '9':
				size = size<<4 | int(c-'0')
			case 'a' <= c|0x20 && c|0x20 <= 'f':
				size = size<<4 | int(c|0x20-'a'+10)
			default:
				return 0, false
			}
		}
		if size == 0 {
			if len(buf)-i >= 2 && buf[i] == '\r' && buf[i+1] == '\n' {
				return i + 2, true
			}
			return 0, false
		}
		if len(buf)-i < size+2 || buf[i+size] != '\r' || buf[i+size+1] != '\n' {
			return 0, false
		}
		if resp != nil {
			resp.AppendBody(buf[i : i+size])
		}
		i += size + 2
	}
}

// dropHopHeaders removes the backend's hop-by-hop headers (and any its
// Connection header names) from the response to the client; Trailer stays,
// since the trailers it announces go on (fastBody.readTrailer).
func dropHopHeaders(h *fasthttp.ResponseHeader) {
	var found bool
	for k := range h.All() {
		switch len(k) {
		case 2, 7, 10, 16, 18:
			if nameIs(k, "Te") || nameIs(k, "Upgrade") || nameIs(k, "Connection") ||
				nameIs(k, "Keep-Alive") || nameIs(k, "Proxy-Connection") || nameIs(k, "Proxy-Authenticate") {
				found = true
			}
		}
	}
	if !found {
		return
	}
	var names [8]string
	listedNames := names[:0]
	for _, t := range appendTokens(nil, h.Peek("Connection")) {
		listedNames = append(listedNames, string(t))
	}
	for _, n := range listedNames {
		h.Del(n)
	}
	for _, n := range [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Upgrade", "Proxy-Authenticate"} {
		h.Del(n)
	}
}

// releaseUpstream gives the backend connection back for reuse when the
// exchange on it ended cleanly (clean) and the backend keeps it open, and
// closes it otherwise.
func (x *fastExchange) releaseUpstream(clean bool) {
	uc := x.uc
	if uc == nil {
		return
	}
	x.uc = nil
	if clean && !x.backendClose {
		x.r.upstream.put(x.b, uc)
		return
	}
	uc.close()
}

// fail answers a request no backend answered.
func (x *fastExchange) fail(err error) {
	ctx, e, r := x.ctx, x.entry, x.r
	fail := proxyFailure(err, errors.Is(err, errBodyTimeout), errors.Is(err, errClientGone))
	e.metrics.countStatus(fail.status)
	x.facts.status, x.facts.failure = fail.status, fail
	if fail.status == statusClientClosed {
		ctx.SetConnectionClose()
		return
	}
	// Copies: a log handler may keep what it is given.
	r.logProxyError(ctx, e, fail, string(ctx.Request.Header.Host()), string(ctx.Path()), err)
	msg := failureMessage(fail, e.route.Service)
	if fail.status == fasthttp.StatusRequestTimeout {
		ctx.SetConnectionClose()
	}
	fastText(ctx, fail.status, msg)
	x.facts.bytes = int64(len(msg))
}

// stickyBackend is the backend a request's sticky cookie names, when it
// is live and not tried yet.
func (x *fastExchange) stickyBackend(tried []*backend) *backend {
	v := x.ctx.Request.Header.Cookie(x.entry.stickyCookie)
	if len(v) == 0 {
		return nil
	}
	return backendByToken(x.entry, b2s(v), tried)
}

// fastBody streams a backend's response body to the client: fasthttp
// calls its WriteTo once the header is written, and Close when the
// response is done.
type fastBody struct {
	x *fastExchange
	// src reads the body from the backend connection: limited for a
	// Content-Length body, chunked for a chunked one, else the
	// connection until the backend closes it.
	src     io.Reader
	limited io.LimitedReader
	chunked bool
	// direct: the header has gone out, and the body is written to the
	// client connection itself (a Content-Length body).
	direct bool
	// done is set once the body was read to its end.
	done bool
}

var _ fasthttp.BodyWriterTo = (*fastBody)(nil)

func (s *fastBody) begin(cl int) {
	br := s.x.uc.br
	s.done, s.chunked, s.direct = false, false, false
	switch {
	case cl >= 0:
		s.limited = io.LimitedReader{R: br, N: int64(cl)}
		s.src, s.direct = &s.limited, true
	case cl == -1:
		s.src, s.chunked = httputil.NewChunkedReader(br), true
	default:
		s.src = br
		s.x.backendClose = true
	}
}

// SupportsBodyWriteTo tells fasthttp to copy the body with WriteTo.
func (s *fastBody) SupportsBodyWriteTo() bool { return true }

// WriteTo copies the body to w (or, direct, to the client connection)
// through a pooled buffer, writing each read on at once: a backend that
// pauses (Server-Sent Events, a long poll, a slow download) has what it
// sent so far delivered rather than held until a buffer fills.
func (s *fastBody) WriteTo(w io.Writer) (int64, error) {
	bp := s.x.r.copyBuffers.Get().(*[fastCopyBufferSize]byte)
	defer s.x.r.copyBuffers.Put(bp)
	dst := w
	if s.direct {
		dst = s.x.ctx.Conn()
	}
	var total int64
	for {
		n, err := s.Read(bp[:])
		if n > 0 {
			if _, werr := dst.Write(bp[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Read reads the body from the backend, counting it, and at its end reads
// what follows it (a chunked body's trailer). fasthttp copies through
// WriteTo; Read is for any copy that does not.
func (s *fastBody) Read(p []byte) (int, error) {
	n, err := s.src.Read(p)
	s.x.facts.bytes += int64(n)
	if errors.Is(err, io.EOF) {
		s.done = s.src != s.x.uc.br
		if s.chunked {
			s.readTrailer()
		}
	}
	return n, err
}

// readTrailer reads the trailer section that ends a chunked body into the
// response, whose trailer fasthttp writes after the body: the fields the
// backend announced (Trailer) go on. A trailer fasthttp refuses (a field
// no trailer may be) leaves the client's body without one, and the
// connection is not kept.
func (s *fastBody) readTrailer() {
	if err := s.x.ctx.Response.Header.ReadTrailer(s.x.uc.br); err != nil {
		s.done = false
	}
}

// Close ends the exchange: fasthttp is done with the response.
func (s *fastBody) Close() error {
	x := s.x
	x.releaseUpstream(s.done)
	s.src = nil
	x.end()
	return nil
}

// hijack takes over the client connection of an upgraded request once
// the 101 answer is written, and splices it to the backend connection.
func (x *fastExchange) hijack() {
	conn := x.ctx.Conn()
	x.ctx.Hijack(func(c net.Conn) { x.splice(c, conn) })
}

// splice copies both ways between the upgraded client connection and the
// backend until either ends, the pair is idle for Config.TCPIdleTimeout,
// or the drain time is up. client is what fasthttp hands over (reading it
// yields what fasthttp had read ahead); conn is the connection under it,
// which fasthttp closes only once splice returns.
func (x *fastExchange) splice(client, conn net.Conn) {
	r, uc := x.r, x.uc
	x.uc = nil
	defer x.end()
	defer uc.close()
	stop := context.AfterFunc(r.requestsCtx, func() {
		conn.Close()
		uc.close()
	})
	defer stop()
	_ = uc.setDeadline(time.Time{})
	uc.client = nil
	watch := newIdleWatch(r.cfg.TCPIdleTimeout, func() {
		conn.Close()
		uc.close()
	})
	defer watch.stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := r.buffers.Get()
		defer r.buffers.Put(buf)
		_, _ = io.CopyBuffer(struct{ io.Writer }{uc.conn}, activeReader{client, watch}, buf)
		closeWrite(uc.conn)
	}()
	buf := r.buffers.Get()
	_, _ = io.CopyBuffer(struct{ io.Writer }{client}, activeReader{uc.br, watch}, buf)
	r.buffers.Put(buf)
	closeWrite(conn)
	wg.Wait()
}
