// Package server is flynn-router: an HTTP(S) and TCP reverse proxy whose
// routes come from a RouteSource (the controller API) and whose backends come
// from a BackendSource (discoverd).
//
//	RouteSource ──▶ followRoutes ──▶ table (atomic.Pointer, immutable)
//	                                   │  host → routes by path, tcp port → route,
//	                                   │  SNI name → certificate
//	BackendSource ─▶ pool per service ─┘  (atomic backend set + in-flight counts)
//
//	client ─▶ listener (conn cap) ─▶ http.Server ─▶ lookup ─▶ route's ReverseProxy
//	         ─▶ routeTransport: sticky cookie or power of two choices, retries
//	         ─▶ shared http.Transport (keep-alive pool) ─▶ backend
//
// The request path takes no locks: the table and each backend set are read
// through atomic pointers and replaced whole on change. A backend that leaves
// its service is dropped from the set at once; requests already on it keep
// their reference and finish (drain).
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/netutil"

	flynnmetrics "github.com/openflynn/flynn/pkg/metrics"
)

// Router is a running flynn-router. New opens its listeners; Run serves.
type Router struct {
	cfg      Config
	logger   *slog.Logger
	routes   RouteSource
	backends BackendSource

	table       atomic.Pointer[table]
	transport   *http.Transport
	buffers     *bufferPool
	metrics     *metrics
	defaultCert *tls.Certificate
	pools       *poolSet
	tcp         *tcpProxy
	// exchanges pools the state of a request on its way through the
	// proxy (*exchange); lineBuffers pools the buffers request lines are
	// written in (*[]byte).
	exchanges, lineBuffers sync.Pool
	// fastExchanges pools the fasthttp engine's *fastExchange,
	// copyBuffers its *[fastCopyBufferSize]byte; upstream is its
	// connections to backends.
	fastExchanges, copyBuffers sync.Pool
	upstream                   *upstreamDialer
	// requestsCtx ends when the drain time is up: hijacked connections
	// of the fasthttp engine end with it. Set by Run.
	requestsCtx context.Context

	httpLns, httpsLns   []net.Listener
	metricsLn           net.Listener
	httpPort, httpsPort string

	// synced is set once the first route listing is in the table and
	// the backends of its services are known (or Config.SyncTimeout has
	// passed waiting for them): the router's health (/health on the
	// metrics listener). firstSync is closed at the same moment. Only the
	// route follower sets it.
	synced    atomic.Bool
	firstSync chan struct{}

	// active counts HTTP handlers running, including those whose connection
	// was hijacked for an upgrade, which http.Server.Shutdown does not wait
	// for.
	active atomic.Int64
}

// New checks cfg and opens the router's listeners, so that addresses with
// port 0 are known (HTTPAddr, HTTPSAddr, MetricsAddr) before Run.
func New(cfg Config, routes RouteSource, backends BackendSource, logger *slog.Logger) (*Router, error) {
	cfg = cfg.withDefaults()
	r := &Router{
		cfg:      cfg,
		logger:   logger,
		routes:   routes,
		backends: backends,
		buffers:  &bufferPool{},

		firstSync: make(chan struct{}),
	}
	r.table.Store(newTable())
	r.transport = newTransport(&r.cfg)
	r.exchanges.New = func() any { return r.newExchange() }
	r.lineBuffers.New = func() any { return new([]byte) }
	r.fastExchanges.New = func() any { return r.newFastExchange() }
	r.copyBuffers.New = func() any { return new([fastCopyBufferSize]byte) }
	r.upstream = newUpstreamDialer(&r.cfg)
	// Made here rather than in Run, so that it is there from the start
	// for whoever looks at it (the tests poll its listeners).
	r.tcp = newTCPProxy(r)
	switch cfg.HTTPEngine {
	case EngineFastHTTP, EngineNetHTTP:
	default:
		return nil, fmt.Errorf("router: unknown HTTP engine %q (want %q or %q)", cfg.HTTPEngine, EngineFastHTTP, EngineNetHTTP)
	}
	r.metrics = newMetrics(&r.table)
	if err := registerAll(r.metrics.registry, cfg.MoreMetrics); err != nil {
		return nil, err
	}

	certPEM, keyPEM := cfg.TLSCert, cfg.TLSKey
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		var err error
		if certPEM, keyPEM, err = selfSignedPEM("flynn-router"); err != nil {
			return nil, fmt.Errorf("default certificate: %w", err)
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("default certificate: %w", err)
	}
	r.defaultCert = &cert
	if len(r.cfg.StickyKey) == 0 {
		r.cfg.StickyKey = make([]byte, 32)
		_, _ = rand.Read(r.cfg.StickyKey)
		r.logger.Warn("no sticky-session key configured; using a random one, so sticky cookies end when this router restarts")
	}

	if r.httpLns, err = listenAll(cfg.HTTPAddrs, cfg.ReusePort); err == nil {
		if r.httpsLns, err = listenAll(cfg.HTTPSAddrs, cfg.ReusePort); err == nil && cfg.MetricsAddr != "" {
			r.metricsLn, err = listen(cfg.MetricsAddr, false)
		}
	}
	if err != nil {
		r.closeListeners()
		return nil, err
	}
	// X-Forwarded-Port names the first listener's port: the listeners of
	// one kind share their port (80, 443) but in tests.
	r.httpPort, r.httpsPort = portOf(r.httpLns), portOf(r.httpsLns)
	return r, nil
}

func (r *Router) closeListeners() {
	closeAll(r.httpLns)
	closeAll(r.httpsLns)
	if r.metricsLn != nil {
		r.metricsLn.Close()
	}
}

// HTTPAddr is the first address plain HTTP is served on, or nil.
func (r *Router) HTTPAddr() net.Addr { return firstAddr(r.httpLns) }

// HTTPSAddr is the first address HTTPS is served on, or nil.
func (r *Router) HTTPSAddr() net.Addr { return firstAddr(r.httpsLns) }

// MetricsAddr is the address metrics are served on, or nil.
func (r *Router) MetricsAddr() net.Addr {
	if r.metricsLn == nil {
		return nil
	}
	return r.metricsLn.Addr()
}

func firstAddr(lns []net.Listener) net.Addr {
	if len(lns) == 0 {
		return nil
	}
	return lns[0].Addr()
}

func portOf(lns []net.Listener) string {
	if len(lns) == 0 {
		return ""
	}
	return strconv.Itoa(lns[0].Addr().(*net.TCPAddr).Port)
}

func addrsOf(lns []net.Listener) []string {
	out := make([]string, len(lns))
	for i, ln := range lns {
		out[i] = ln.Addr().String()
	}
	return out
}

// Run serves until ctx ends, then drains: listeners close, requests and
// connections in flight get Config.ShutdownTimeout to finish, and whatever
// is left is cut. It returns once every goroutine it started has stopped, but
// for the cleaner of fasthttp's worker pool, which ends on its own within
// 100 ms.
func (r *Router) Run(ctx context.Context) error {
	// Internal work outlives ctx until the drain is over.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	// Requests' contexts derive from base; cancelling it ends hijacked
	// (upgraded) connections when the drain time is up.
	base, cutRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cutRequests()
	r.requestsCtx = base

	r.pools = &poolSet{source: r.backends, stickyKey: r.cfg.StickyKey, logger: r.logger, ctx: bg, pools: map[string]*pool{}}

	followCtx, stopFollow := context.WithCancel(bg)
	var followWG sync.WaitGroup
	followWG.Add(1)
	go func() {
		defer followWG.Done()
		r.followRoutes(followCtx)
	}()

	errLog := slog.NewLogLogger(r.logger.Handler(), slog.LevelDebug)
	newServer := func(kind int) *http.Server {
		return &http.Server{
			Handler:           &httpHandler{r: r, kind: kind},
			ReadHeaderTimeout: r.cfg.ReadHeaderTimeout,
			ReadTimeout:       r.cfg.ReadTimeout,
			IdleTimeout:       r.cfg.IdleTimeout,
			MaxHeaderBytes:    r.cfg.MaxHeaderBytes,
			BaseContext:       func(net.Listener) context.Context { return base },
			ErrorLog:          errLog,
		}
	}
	var servers []*http.Server
	serveErr := make(chan error, len(r.httpLns)+len(r.httpsLns)+1)
	var serveWG sync.WaitGroup
	// HTTP and HTTPS wait for the routes (Config.SyncTimeout); their
	// connections queue in the kernel meanwhile.
	routesKnown := make(chan struct{})
	serveWG.Add(1)
	go func() {
		defer serveWG.Done()
		defer close(routesKnown)
		timer := time.NewTimer(r.cfg.SyncTimeout)
		defer timer.Stop()
		select {
		case <-r.firstSync:
		case <-timer.C:
			r.logger.Warn("serving before the routes are known", "waited", r.cfg.SyncTimeout)
		case <-base.Done():
		}
	}()
	serve := func(srv *http.Server, ln net.Listener, tlsOn bool) {
		servers = append(servers, srv)
		serveWG.Add(1)
		go func() {
			defer serveWG.Done()
			<-routesKnown
			var err error
			if tlsOn {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
			}
		}()
	}
	// The fasthttp engine's servers; fastMu guards fastDraining, which
	// keeps a server that has not begun from beginning once the drain has.
	var fastServers []*fastServer
	var fastMu sync.Mutex
	fastDraining := false
	serveFast := func(fs *fastServer) {
		fastServers = append(fastServers, fs)
		serveWG.Add(1)
		go func() {
			defer serveWG.Done()
			<-routesKnown
			fastMu.Lock()
			if fastDraining {
				fastMu.Unlock()
				return
			}
			fastMu.Unlock()
			if err := fs.srv.Serve(fs.ln); err != nil && !errors.Is(err, net.ErrClosed) {
				fastMu.Lock()
				draining := fastDraining
				fastMu.Unlock()
				if !draining {
					serveErr <- fmt.Errorf("serve %s: %w", fs.limiter.Addr(), err)
				}
			}
		}()
	}
	tlsConfig := func() *tls.Config {
		return &tls.Config{GetCertificate: r.getCertificate, MinVersion: tls.VersionTLS12}
	}
	switch r.cfg.HTTPEngine {
	case EngineFastHTTP:
		for _, ln := range r.httpLns {
			limiter := newConnLimiter(ln, r.cfg.MaxConns)
			serveFast(&fastServer{srv: r.newFastServer(kindHTTP), ln: limiter, limiter: limiter})
		}
		for _, ln := range r.httpsLns {
			limiter := newConnLimiter(ln, r.cfg.MaxConns)
			fs := &fastServer{srv: r.newFastServer(kindHTTPS), limiter: limiter}
			cfg := tlsConfig()
			cfg.NextProtos = []string{"h2", "http/1.1"}
			fs.ln = tls.NewListener(limiter, cfg)
			// HTTP/2 goes to net/http, over the connections fasthttp
			// accepted and negotiated h2 on.
			h2 := newHandoffListener(ln.Addr())
			h2srv := newServer(kindHTTPS)
			h2srv.TLSConfig = cfg
			h2srv.ConnState = h2.connState
			h2srv.Protocols = new(http.Protocols)
			h2srv.Protocols.SetHTTP2(true)
			fs.srv.NextProto("h2", h2.serve)
			serve(h2srv, h2, false)
			serveFast(fs)
		}
	default:
		for _, ln := range r.httpLns {
			serve(newServer(kindHTTP), netutil.LimitListener(ln, r.cfg.MaxConns), false)
		}
		for _, ln := range r.httpsLns {
			srv := newServer(kindHTTPS)
			srv.TLSConfig = tlsConfig()
			serve(srv, netutil.LimitListener(ln, r.cfg.MaxConns), true)
		}
	}
	var metricsSrv *http.Server
	if r.metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle(flynnmetrics.Path, flynnmetrics.Handler(r.metrics.registry, r.cfg.MetricsKey))
		mux.HandleFunc("/health", r.health)
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
		serveWG.Add(1)
		go func() {
			defer serveWG.Done()
			if err := metricsSrv.Serve(r.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("serve metrics: %w", err)
			}
		}()
	}
	r.logger.Info("router started", "http", addrsOf(r.httpLns), "https", addrsOf(r.httpsLns), "metrics", r.MetricsAddr())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
	}
	r.logger.Info("router draining", "timeout", r.cfg.ShutdownTimeout)

	// No route changes during the drain, so no TCP listener opens again.
	stopFollow()
	followWG.Wait()

	drainCtx, cancelDrain := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ShutdownTimeout)
	defer cancelDrain()
	var shutdownWG sync.WaitGroup
	for _, srv := range servers {
		shutdownWG.Add(1)
		go func() {
			defer shutdownWG.Done()
			_ = srv.Shutdown(drainCtx)
		}()
	}
	fastMu.Lock()
	fastDraining = true
	fastMu.Unlock()
	for _, fs := range fastServers {
		shutdownWG.Add(1)
		go func() {
			defer shutdownWG.Done()
			fs.limiter.Close()
			_ = fs.srv.ShutdownWithContext(drainCtx)
		}()
	}
	r.tcp.closeListeners()
	shutdownWG.Wait()
	r.waitActive(drainCtx)
	r.tcp.wait(drainCtx)

	// Whatever is left now is cut.
	cutRequests()
	for _, srv := range servers {
		srv.Close()
	}
	for _, fs := range fastServers {
		fs.limiter.closeConns()
	}
	r.tcp.closeConns()
	r.waitActive(context.Background())
	r.tcp.wait(context.Background())
	if metricsSrv != nil {
		metricsSrv.Close()
	}
	serveWG.Wait()

	stopBG()
	r.pools.wait()
	r.pools.closeIdle()
	r.transport.CloseIdleConnections()
	r.logger.Info("router stopped")
	return runErr
}

// fastServer is a fasthttp server and the listener it serves (limiter,
// or TLS over it).
type fastServer struct {
	srv     *fasthttp.Server
	ln      net.Listener
	limiter *connLimiter
}

// waitActive waits until no handler runs or ctx ends. It polls because the
// request path should pay for one atomic add, not for a lock and condition.
func (r *Router) waitActive(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for r.active.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// httpHandler serves one listener kind (HTTP or HTTPS).
type httpHandler struct {
	r    *Router
	kind int
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	e := h.r.table.Load().lookup(req.Host, req.URL.Path)
	if e == nil && !h.r.synced.Load() {
		w.Header().Set("Retry-After", "1")
		writeText(w, http.StatusServiceUnavailable, "flynn-router: routes not loaded yet\n")
		return
	}
	if e == nil {
		h.r.metrics.unmatched.Inc()
		writeText(w, http.StatusNotFound, "flynn-router: no route matches host "+strconv.Quote(req.Host)+" and path "+strconv.Quote(req.URL.Path)+"\n")
		return
	}
	h.r.active.Add(1)
	defer h.r.active.Add(-1)
	x := h.r.exchanges.Get().(*exchange)
	x.begin(e, h.kind)
	// Deferred, so that a request whose client went away while its
	// response was copied (ReverseProxy panics with ErrAbortHandler) has
	// its line too.
	defer h.r.endExchange(x, req, start)
	if req.Body != nil && req.Body != http.NoBody {
		var limit time.Time
		if h.r.cfg.ReadTimeout > 0 {
			// The server's deadline is ReadTimeout from when it began to
			// read the request, a little before start.
			limit = start.Add(h.r.cfg.ReadTimeout)
		}
		body := newDeadlineBody(w, req.Body, h.r.cfg.BodyReadTimeout, limit)
		defer body.finish()
		req = req.WithContext(context.WithValue(req.Context(), deadlineBodyKey{}, body))
		req.Body = body
	}
	x.proxy.ServeHTTP(w, req)
	e.metrics.duration.Observe(time.Since(start).Seconds())
}

// endExchange writes the request's line, when its route has them, and
// returns its exchange to the pool.
func (r *Router) endExchange(x *exchange, req *http.Request, start time.Time) {
	if r.cfg.RequestLog != nil && logsRequests(x.entry.route) {
		r.logRequest(x, req, start, time.Now())
	}
	x.entry = nil
	r.exchanges.Put(x)
}

// health answers 200 once the router has listed its routes, 503 before:
// the wait for a router that serves what the controller holds.
func (r *Router) health(w http.ResponseWriter, _ *http.Request) {
	if !r.synced.Load() {
		writeText(w, http.StatusServiceUnavailable, "flynn-router: no routes yet\n")
		return
	}
	writeText(w, http.StatusOK, "ok\n")
}
