package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Router. Listen addresses are taken as given (an empty
// list or address disables those listeners); zero durations and limits
// take the defaults named on each field.
type Config struct {
	// HTTPAddrs are where plain HTTP is served, one listener each; none
	// when empty. flynn-router's default: port 80 on its node's address
	// and on its node's app-network gateway, so that app jobs on the node
	// reach it too.
	HTTPAddrs []string
	// HTTPSAddrs are where HTTPS (HTTP/1.1 and HTTP/2) is served, one
	// listener each; none when empty. flynn-router's default: port 443
	// where HTTPAddrs have 80.
	HTTPSAddrs []string
	// TCPHosts are the hosts each TCP route's port is bound on, one
	// listener per host (default: one listener on every interface).
	TCPHosts []string
	// ReusePort binds the HTTP, HTTPS and TCP route listeners with
	// SO_REUSEPORT, so that a second router on the node (the new one of a
	// one-by-one deploy) binds the same addresses beside this one; the
	// kernel spreads new connections over both until this one drains and
	// closes its listeners. Both must run as the same user.
	ReusePort bool
	// MetricsAddr serves Prometheus metrics at /metrics and the router's
	// health at /health (200 once it has its routes, 503 before); keep it
	// internal. Empty: none. flynn-router's default: its job's $PORT on
	// its node's address, where it registers as "router-http".
	MetricsAddr string
	// MetricsKey, when set, is required (as the basic-auth password) for
	// /metrics; /health stays open, since flynn-host's health check and
	// bootstrap's wait for the router ask it without a key. Empty: both
	// open. flynn-router's: its cluster key.
	MetricsKey string
	// MoreMetrics are served beside the router's own series (those of
	// the shipper of its request lines).
	MoreMetrics []prometheus.Collector

	// TLSCert and TLSKey are the PEM default certificate, served to TLS
	// clients whose server name no route has a certificate for. When empty
	// a self-signed one is made at start.
	TLSCert, TLSKey []byte
	// StickyKey signs sticky-session cookies. Routers of one cluster must
	// share it for a cookie to mean the same to each; when empty a random
	// key is made at start (and sticky sessions end at a restart).
	StickyKey []byte

	// RequestLog takes the router's lines for apps' logs, as Heroku's
	// router writes them: one per HTTP request of a route, when it ends
	// (requests no route matches have no app, and no line), and one per
	// TCP route connection, when it closes. A route with NoRequestLog set
	// has none, and so has a route of no app. Nil: no lines. See
	// RequestLogger for what a line says.
	RequestLog RequestLogger
	// JobID and HostID are the router's own job and its node, which
	// its lines name as theirs (flynn-router: $FLYNN_JOB_ID and
	// $FLYNN_HOST_ID, which flynn-host sets).
	JobID, HostID string

	// HTTPEngine serves HTTP/1.1 (plain and over TLS): EngineFastHTTP
	// (the default) or EngineNetHTTP. HTTP/2 is served by net/http
	// either way. Both do everything the router does; fasthttp costs
	// about half the CPU per request (see the README's "Performance").
	HTTPEngine string

	// DialTimeout bounds connecting to a backend (default 5s).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a backend's response
	// headers once the request was sent (default 60s); the client gets 504.
	ResponseHeaderTimeout time.Duration
	// ReadHeaderTimeout bounds reading a client's request headers, which
	// is what stops slowloris clients (default 10s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole client request, body included
	// (default 0: none, since uploads may be large and slow; see
	// BodyReadTimeout).
	ReadTimeout time.Duration
	// BodyReadTimeout bounds each wait for more of a request's body
	// (default 60s, nginx's client_body_timeout): a client that sends its
	// headers and then stalls, or trickles its body slower than a read
	// per BodyReadTimeout, is cut, while an upload that keeps sending may
	// take as long as it needs. The deadline moves at most 16 times per
	// BodyReadTimeout, so a stalled client is cut after 15/16 of it at
	// the earliest.
	BodyReadTimeout time.Duration
	// IdleTimeout closes client keep-alive connections idle this long
	// (default 120s).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers (default 64 KiB); bigger
	// ones get 431.
	MaxHeaderBytes int
	// MaxConns bounds the open client connections of each HTTP listener
	// (default 20000); beyond it new connections wait in the kernel's
	// accept queue, so memory and goroutines stay bounded under a flood.
	MaxConns int
	// MaxTCPConns bounds open connections over all TCP routes (default
	// 20000); beyond it new connections are closed at once.
	MaxTCPConns int
	// MaxTCPConnsPerRoute bounds the open connections of each TCP route
	// (default: a quarter of MaxTCPConns), so that one busy or flooded
	// route cannot take every slot of MaxTCPConns; beyond it the route's
	// new connections are closed at once.
	MaxTCPConnsPerRoute int
	// TCPIdleTimeout closes a TCP route's connection, and an upgraded
	// HTTP connection (a websocket), that carried no bytes either way for
	// this long (default 10m). Without it a peer gone without a word (a
	// dead NAT entry, a machine switched off) holds its connection, and
	// its slot, for ever. Protocols that stay quiet longer must send
	// keep-alives (websocket pings, SSH's ServerAliveInterval).
	TCPIdleTimeout time.Duration
	// MaxIdleConnsPerBackend is how many idle keep-alive connections to
	// each backend are kept for reuse (default 256).
	MaxIdleConnsPerBackend int
	// MaxAttempts bounds how many backends one request may be tried on
	// (default 3).
	MaxAttempts int
	// ShutdownTimeout is how long requests and connections in flight may
	// take to finish after shutdown begins (default 30s).
	ShutdownTimeout time.Duration
	// SyncTimeout bounds how long HTTP and HTTPS connections wait in the
	// accept queue for the first route listing and the first backends of
	// its services (default 10s). A router that serves before it knows the
	// routes answers "no route" for routes that exist, and before it knows
	// their backends "no backends": a router starting beside another (a
	// deploy, a new node) would fail requests the other serves.
	SyncTimeout time.Duration
}

func (c *Config) withDefaults() Config {
	out := *c
	setDefault(&out.HTTPEngine, EngineFastHTTP)
	setDefault(&out.DialTimeout, 5*time.Second)
	setDefault(&out.ResponseHeaderTimeout, 60*time.Second)
	setDefault(&out.ReadHeaderTimeout, 10*time.Second)
	setDefault(&out.IdleTimeout, 120*time.Second)
	setDefault(&out.MaxHeaderBytes, 64<<10)
	setDefault(&out.MaxConns, 20000)
	setDefault(&out.MaxTCPConns, 20000)
	setDefault(&out.MaxTCPConnsPerRoute, max(out.MaxTCPConns/4, 1))
	setDefault(&out.TCPIdleTimeout, 10*time.Minute)
	setDefault(&out.BodyReadTimeout, 60*time.Second)
	setDefault(&out.MaxIdleConnsPerBackend, 256)
	setDefault(&out.MaxAttempts, 3)
	setDefault(&out.ShutdownTimeout, 30*time.Second)
	setDefault(&out.SyncTimeout, 10*time.Second)
	return out
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
