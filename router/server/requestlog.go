package server

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/logaggregator"
)

// RequestLogger takes the router's lines for apps' logs (Config.RequestLog).
// The router calls Ship as each request ends, on the request's goroutine,
// so Ship must not block: one that cannot keep up drops lines.
//
// A line is in its route's app's log with process type "router", the
// router's job and node, on stdout. Its data reads as Heroku's router's
// lines do: key=value pairs, values quoted when they hold spaces, quotes or
// other bytes that would end them (path and fwd always are), in this order:
//
//	at=info method=GET path="/items?x=1" host=example.com request_id=… fwd="203.0.113.7" backend=10.0.0.5:55012 status=200 bytes=1234 duration=12ms protocol=https
//
// path is the request target as the client sent it, query included; fwd
// the X-Forwarded-For the backend was sent (the client's address last);
// backend the last backend tried (left out when none was); bytes the
// response body's size; duration the time from the request's arrival to
// the end of its response (of an upgraded connection, a websocket: to its
// end).
//
// A request the router answered itself starts with at=error and the
// error's code and description, Heroku's codes where one means the same
// (H12 request timeout, H13 backend connection failed, H14 no backends,
// H19 backend connection timeout, H21 backend connection refused, H27 the
// client went away: status 499, H28 the client's body stalled):
//
//	at=error code=H14 desc="No backends available" method=GET path="/" … status=503 bytes=84 duration=0ms protocol=http
//
// A TCP route's connection has one line when it closes, with the bytes
// that went each way:
//
//	at=info port=3000 fwd="203.0.113.7" backend=10.0.0.5:55012 bytes_in=517 bytes_out=1620 duration=3021ms protocol=tcp
//
// Values a client chooses are cut (and end in "...") so that a line stays
// within a few KiB, far below logaggregator.MaxLineBytes.
type RequestLogger interface {
	Ship(logaggregator.Line)
}

// The longest values a line holds, before quoting: what a client chooses
// can be as long as its headers may be.
const (
	maxMethodBytes    = 32
	maxPathBytes      = 1024
	maxHostBytes      = 256
	maxRequestIDBytes = 200
	maxFwdBytes       = 256
	maxBackendBytes   = 64
)

// routerError is an answer the router gave itself rather than a backend:
// its status, and the code and description of the request's line.
type routerError struct {
	status     int
	code, desc string
}

// logsRequests reports whether a route's requests have lines: it must
// belong to an app, whose log they go to, and not have turned them off.
func logsRequests(rt *controller.Route) bool {
	return rt.AppID != "" && !rt.NoRequestLog
}

// logRequest ships the line of a request that x carried, which arrived at
// start and ended at end.
func (r *Router) logRequest(x *exchange, req *http.Request, start, end time.Time) {
	target := req.RequestURI
	if target == "" {
		target = req.URL.Path
	}
	r.writeRequestLine(x.entry.route, &requestFacts{
		method: req.Method, target: target, host: req.Host, clientAddr: req.RemoteAddr,
		requestID: x.requestID, fwd: x.fwd, backend: x.backend, proto: x.proto,
		status: x.status, bytes: x.bytes, failure: x.failure,
	}, start, end)
}

// requestFacts is what a request's line tells, gathered by either HTTP
// engine. The strings may point into the engine's buffers of the request:
// writeRequestLine copies them before it returns.
type requestFacts struct {
	// method, target, host and clientAddr are as the client sent them
	// (target: the request target, query included) and where it came
	// from ("ip:port").
	method, target, host, clientAddr string
	// requestID and fwd are the X-Request-Id and X-Forwarded-For the
	// backend was sent (fwd is empty when the request never got that
	// far); backend the last backend tried ("" when none was).
	requestID, fwd, backend string
	// proto is "http" or "https".
	proto  string
	status int
	// bytes is the size of the response body sent.
	bytes int64
	// failure is the router's own answer, when it gave one.
	failure routerError
}

// writeRequestLine ships the line of a request of route rt, which arrived
// at start and ended at end.
func (r *Router) writeRequestLine(rt *controller.Route, f *requestFacts, start, end time.Time) {
	bp := r.lineBuffers.Get().(*[]byte)
	b := (*bp)[:0]
	if f.failure.code != "" {
		b = append(b, "at=error code="...)
		b = append(b, f.failure.code...)
		b = append(b, " desc="...)
		b = strconv.AppendQuote(b, f.failure.desc)
	} else {
		b = append(b, "at=info"...)
	}
	b = append(b, " method="...)
	b = appendValue(b, f.method, maxMethodBytes)
	b = append(b, " path="...)
	b = appendQuoted(b, f.target, maxPathBytes, false)
	b = append(b, " host="...)
	b = appendValue(b, f.host, maxHostBytes)
	b = append(b, " request_id="...)
	b = appendValue(b, f.requestID, maxRequestIDBytes)
	fwd := f.fwd
	if fwd == "" {
		// The proxy failed before it rewrote the request.
		fwd = clientIP(f.clientAddr)
	}
	b = append(b, " fwd="...)
	// The end of the list is what the router saw, the start what the
	// client claims: a long list keeps its end.
	b = appendQuoted(b, fwd, maxFwdBytes, true)
	if f.backend != "" {
		b = append(b, " backend="...)
		b = appendValue(b, f.backend, maxBackendBytes)
	}
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(f.status), 10)
	b = append(b, " bytes="...)
	b = strconv.AppendInt(b, f.bytes, 10)
	b = appendDuration(b, end.Sub(start))
	b = append(b, " protocol="...)
	b = append(b, f.proto...)
	r.shipLine(rt, end, bp, b)
}

// logConn ships the line of a TCP route's connection from client, which
// began at start, went to backend (or, as fail says, could not: backend is
// then the last one tried, if any) and carried in bytes from the client
// and out bytes to it.
func (r *Router) logConn(e *routeEntry, client net.Addr, backend string, fail routerError, in, out int64, start time.Time) {
	end := time.Now()
	bp := r.lineBuffers.Get().(*[]byte)
	b := (*bp)[:0]
	if fail.code != "" {
		b = append(b, "at=error code="...)
		b = append(b, fail.code...)
		b = append(b, " desc="...)
		b = strconv.AppendQuote(b, fail.desc)
	} else {
		b = append(b, "at=info"...)
	}
	b = append(b, " port="...)
	b = strconv.AppendInt(b, int64(e.route.Port), 10)
	if ta, ok := client.(*net.TCPAddr); ok {
		b = append(b, ` fwd="`...)
		b = ta.AddrPort().Addr().Unmap().AppendTo(b)
		b = append(b, '"')
	} else {
		b = append(b, " fwd="...)
		b = appendQuoted(b, clientIP(client.String()), maxFwdBytes, true)
	}
	if backend != "" {
		b = append(b, " backend="...)
		b = appendValue(b, backend, maxBackendBytes)
	}
	b = append(b, " bytes_in="...)
	b = strconv.AppendInt(b, in, 10)
	b = append(b, " bytes_out="...)
	b = strconv.AppendInt(b, out, 10)
	b = appendDuration(b, end.Sub(start))
	b = append(b, " protocol=tcp"...)
	r.shipLine(e.route, end, bp, b)
}

// shipLine ships line b of a route's app, written in the pooled buffer bp,
// and returns the buffer to the pool. The line's string is the one
// allocation a line costs.
func (r *Router) shipLine(rt *controller.Route, end time.Time, bp *[]byte, b []byte) {
	b = append(b, '\n')
	r.cfg.RequestLog.Ship(logaggregator.Line{
		Time:        end,
		AppID:       rt.AppID,
		ProcessType: logaggregator.ProcessTypeRouter,
		JobID:       r.cfg.JobID,
		HostID:      r.cfg.HostID,
		Stream:      logaggregator.StreamStdout,
		Data:        string(b),
	})
	*bp = b
	r.lineBuffers.Put(bp)
}

// appendDuration appends " duration=" and d in whole milliseconds, as
// Heroku's lines give times.
func appendDuration(b []byte, d time.Duration) []byte {
	b = append(b, " duration="...)
	b = strconv.AppendInt(b, d.Milliseconds(), 10)
	return append(b, "ms"...)
}

// appendValue appends v as a value, quoted only when it must be: when it
// is empty, when it holds bytes that would end or confuse an unquoted
// value, or when it is cut for being longer than max.
func appendValue(b []byte, v string, max int) []byte {
	if len(v) > max || !plain(v) {
		return appendQuoted(b, v, max, false)
	}
	return append(b, v...)
}

// appendQuoted appends v quoted, with Go's escapes (which logfmt readers
// take), cut to its first max bytes, or its last with keepEnd, when it
// is longer; "..." marks the cut.
func appendQuoted(b []byte, v string, max int, keepEnd bool) []byte {
	if len(v) <= max {
		if printable(v) {
			// What nearly every value is, quoted without the rune by
			// rune look of strconv.
			b = append(b, '"')
			b = append(b, v...)
			return append(b, '"')
		}
		return strconv.AppendQuote(b, v)
	}
	if keepEnd {
		// Quote the end, then slide it over to make room for the mark
		// after the opening quote.
		q := len(b)
		b = strconv.AppendQuote(b, v[len(v)-max:])
		b = append(b, "..."...)
		copy(b[q+4:], b[q+1:len(b)-3])
		copy(b[q+1:], "...")
		return b
	}
	b = strconv.AppendQuote(b, v[:max])
	return append(b[:len(b)-1], `..."`...)
}

// plain reports whether v can be a value without quotes: printable ASCII
// but for the space, the quote, the backslash and '='.
func plain(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == ' ' || c == '=' {
			return false
		}
	}
	return printable(v)
}

// printable reports whether v needs no escape within quotes: printable
// ASCII but for the quote and the backslash.
func printable(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
