// Package metrics gives every Flynn daemon the same Prometheus setup: a
// registry of its own with the Go runtime and process collectors, the
// text-format handler (served behind the daemon's cluster key), HTTP
// request metrics labelled by route pattern, not by path, so that app ids
// in paths do not make a series each, and Serve, the server of a daemon
// whose metrics have a listener of their own. Tests read the metrics with
// metricstest.
package metrics

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openflynn/flynn/pkg/authkey"
)

// Path is where every daemon serves its metrics.
const Path = "/metrics"

// NewRegistry returns a registry holding the Go runtime (go_*) and process
// (process_*) collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Handler serves reg in Prometheus's text format to requests carrying key
// (see authkey; an empty key admits everyone). A collector that fails
// leaves its series out rather than failing the scrape.
func Handler(reg *prometheus.Registry, key string) http.Handler {
	return authkey.Require(key, promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
}

// HTTP is the request metrics of one daemon's HTTP API:
// <namespace>_http_requests_total{method,route,code} and
// <namespace>_http_request_duration_seconds{method,route}.
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTP registers a daemon's request metrics in reg; namespace is the
// daemon's metric prefix ("flynn_controller").
func NewHTTP(reg prometheus.Registerer, namespace string) *HTTP {
	m := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "http_requests_total",
			Help:      "HTTP requests answered, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "http_request_duration_seconds",
			Help:      "Time from a request's arrival to the end of its answer (a stream's whole life), by method and route pattern.",
			Buckets:   []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 120},
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// UnmatchedRoute labels requests no route matched.
const UnmatchedRoute = "unmatched"

// Router returns an httprouter.Router whose routes, registered through the
// returned Router's methods, are instrumented with their pattern.
func (m *HTTP) Router() *Router {
	return &Router{Router: httprouter.New(), m: m}
}

// Router is an httprouter.Router that instruments each route it is given.
// Requests no route matches are counted by Wrap, if the caller wraps the
// router with it, under UnmatchedRoute.
type Router struct {
	*httprouter.Router
	m *HTTP
}

// Handle registers h for method and path, instrumented.
func (r *Router) Handle(method, path string, h httprouter.Handle) {
	r.Router.Handle(method, path, func(w http.ResponseWriter, req *http.Request, ps httprouter.Params) {
		rec := r.m.begin(w)
		defer func() {
			if v := recover(); v != nil {
				// The router's PanicHandler answers 500 once this
				// passes the panic on.
				rec.code = http.StatusInternalServerError
				rec.end(req.Method, path)
				panic(v)
			}
			rec.end(req.Method, path)
		}()
		markRouted(req)
		h(rec, req, ps)
	})
}

// GET registers h for GET path.
func (r *Router) GET(path string, h httprouter.Handle) { r.Handle(http.MethodGet, path, h) }

// HEAD registers h for HEAD path.
func (r *Router) HEAD(path string, h httprouter.Handle) { r.Handle(http.MethodHead, path, h) }

// POST registers h for POST path.
func (r *Router) POST(path string, h httprouter.Handle) { r.Handle(http.MethodPost, path, h) }

// PUT registers h for PUT path.
func (r *Router) PUT(path string, h httprouter.Handle) { r.Handle(http.MethodPut, path, h) }

// PATCH registers h for PATCH path.
func (r *Router) PATCH(path string, h httprouter.Handle) { r.Handle(http.MethodPatch, path, h) }

// DELETE registers h for DELETE path.
func (r *Router) DELETE(path string, h httprouter.Handle) { r.Handle(http.MethodDelete, path, h) }

// Handler registers h for method and path, instrumented.
func (r *Router) Handler(method, path string, h http.Handler) {
	r.Handle(method, path, func(w http.ResponseWriter, req *http.Request, _ httprouter.Params) { h.ServeHTTP(w, req) })
}

// HandlerFunc registers h for method and path, instrumented.
func (r *Router) HandlerFunc(method, path string, h http.HandlerFunc) {
	r.Handler(method, path, h)
}

// routedKey marks, on a request's context, that a route handled it.
type routedKey struct{}

// routed is set on a request by the route that handles it, for Wrap.
type routed struct{ yes bool }

func markRouted(req *http.Request) {
	if f, ok := req.Context().Value(routedKey{}).(*routed); ok {
		f.yes = true
	}
}

// Wrap counts the requests h answers that no instrumented route handled
// (not found, method not allowed, refused before routing) under
// UnmatchedRoute.
func (m *HTTP) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		f := &routed{}
		rec := m.begin(w)
		req = req.WithContext(context.WithValue(req.Context(), routedKey{}, f))
		h.ServeHTTP(rec, req)
		if !f.yes {
			rec.end(req.Method, UnmatchedRoute)
		}
	})
}

// recorder notes the status an answer was given.
type recorder struct {
	http.ResponseWriter
	m     *HTTP
	start time.Time
	code  int
}

func (m *HTTP) begin(w http.ResponseWriter) *recorder {
	return &recorder{ResponseWriter: w, m: m, start: time.Now()}
}

func (rec *recorder) end(method, route string) {
	code := rec.code
	if code == 0 {
		code = http.StatusOK // nothing written: net/http answers 200
	}
	rec.m.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
	rec.m.duration.WithLabelValues(method, route).Observe(time.Since(rec.start).Seconds())
}

// WriteHeader records code and passes it on.
func (rec *recorder) WriteHeader(code int) {
	if rec.code == 0 && code >= 200 {
		rec.code = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 and passes p on.
func (rec *recorder) Write(p []byte) (int, error) {
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	return rec.ResponseWriter.Write(p)
}

// Flush flushes the answer so far, for streams that type-assert
// http.Flusher.
func (rec *recorder) Flush() {
	_ = http.NewResponseController(rec.ResponseWriter).Flush()
}

// Hijack hands the connection over, for endpoints that type-assert
// http.Hijacker (attach). A hijacked connection counts as 101.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(rec.ResponseWriter).Hijack()
	if err == nil && rec.code == 0 {
		rec.code = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

// Unwrap gives http.ResponseController the writer underneath.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
