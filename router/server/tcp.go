package server

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// tcpProxy runs listeners for each TCP route port (one per host of
// Config.TCPHosts) and splices each accepted connection to a backend
// chosen for that connection.
type tcpProxy struct {
	r *Router
	// slots bounds the open connections of all routes (MaxTCPConns).
	slots *slots

	mu        sync.Mutex
	listeners map[int][]net.Listener
	// portSlots bounds the open connections of each port
	// (MaxTCPConnsPerRoute). A port's entry stays when its route goes, so
	// that the connections still open on it count if a route comes back.
	portSlots map[int]*slots
	conns     map[net.Conn]struct{}
	closed    bool

	acceptWG sync.WaitGroup
	connWG   sync.WaitGroup
}

func newTCPProxy(r *Router) *tcpProxy {
	return &tcpProxy{
		r:         r,
		slots:     &slots{max: int64(r.cfg.MaxTCPConns)},
		listeners: map[int][]net.Listener{},
		portSlots: map[int]*slots{},
		conns:     map[net.Conn]struct{}{},
	}
}

// slots counts open connections against a limit.
type slots struct {
	n   atomic.Int64
	max int64
	// full is set by the first take refused since a slot was last given
	// back, so that a flood is logged once rather than per connection.
	full atomic.Bool
}

// take takes a slot, or reports that none is free and whether this is
// the first refusal since one was.
func (s *slots) take() (ok, first bool) {
	if s.n.Add(1) > s.max {
		s.n.Add(-1)
		return false, s.full.CompareAndSwap(false, true)
	}
	return true, false
}

func (s *slots) give() {
	s.n.Add(-1)
	if s.full.Load() {
		s.full.Store(false)
	}
}

// reconcile opens listeners for new TCP routes and closes those of removed
// ones; connections already open on a removed route carry on.
func (p *tcpProxy) reconcile(t *table) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	for port, lns := range p.listeners {
		if t.tcp[port] == nil {
			closeAll(lns)
			delete(p.listeners, port)
		}
	}
	hosts := p.r.cfg.TCPHosts
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	for port, e := range t.tcp {
		if p.listeners[port] != nil {
			continue
		}
		addrs := make([]string, len(hosts))
		for i, h := range hosts {
			addrs[i] = net.JoinHostPort(h, strconv.Itoa(port))
		}
		// Every host or none: a route reachable on some of the node's
		// addresses only would be harder to tell from a working one.
		lns, err := listenAll(addrs, p.r.cfg.ReusePort)
		if err != nil {
			p.r.logger.Error("tcp route cannot listen", "route", e.route.ID, "addrs", addrs, "err", err)
			continue
		}
		p.listeners[port] = lns
		ps := p.portSlots[port]
		if ps == nil {
			ps = &slots{max: int64(p.r.cfg.MaxTCPConnsPerRoute)}
			p.portSlots[port] = ps
		}
		for _, ln := range lns {
			p.acceptWG.Add(1)
			go func() {
				defer p.acceptWG.Done()
				p.accept(ln, port, ps)
			}()
		}
	}
}

func (p *tcpProxy) accept(ln net.Listener, port int, portSlots *slots) {
	backoff := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait rather than spin.
			p.r.logger.Warn("tcp accept", "port", port, "err", err)
			time.Sleep(backoff)
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		e := p.r.table.Load().tcp[port]
		if e == nil {
			conn.Close()
			continue
		}
		// The route's own limit first, so that a route at its limit
		// does not take, even for a moment, a slot another route needs.
		if ok, first := portSlots.take(); !ok {
			if first {
				p.r.logger.Warn("tcp route connection limit reached, closing new connections until one ends", "route", e.route.ID, "port", port, "limit", portSlots.max)
			}
			conn.Close()
			continue
		}
		if ok, first := p.slots.take(); !ok {
			portSlots.give()
			if first {
				p.r.logger.Warn("tcp connection limit reached, closing new connections until one ends", "port", port, "limit", p.slots.max)
			}
			conn.Close()
			continue
		}
		release := func() {
			p.slots.give()
			portSlots.give()
		}
		if !p.track(conn) {
			release()
			conn.Close()
			return
		}
		e.metrics.tcpConns.Inc()
		p.connWG.Add(1)
		go func() {
			defer p.connWG.Done()
			defer release()
			defer p.untrack(conn)
			p.serve(conn, e)
		}()
	}
}

func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// serve connects the client to a backend, trying others when connecting
// fails, then copies both ways, passing each side's end of stream on as a
// half-close so protocols that shut down one direction first still work.
// A connection that carries no bytes either way for Config.TCPIdleTimeout
// is closed: a peer that vanished without a FIN or RST (a dead NAT entry,
// a powered-off machine) would otherwise hold its slot for ever. Its line
// in the app's log goes out once both ways are done.
func (p *tcpProxy) serve(client net.Conn, e *routeEntry) {
	defer client.Close()
	start := time.Now()
	var triedBuf [4]*backend
	tried := triedBuf[:0]
	var backendConn net.Conn
	var b *backend
	var dialErr error
	for attempt := 0; attempt < p.r.cfg.MaxAttempts; attempt++ {
		next := pick(e.pool.list(), tried)
		if next == nil {
			break
		}
		b = next
		tried = append(tried, b)
		c, err := net.DialTimeout("tcp", b.addr, p.r.cfg.DialTimeout)
		if err == nil {
			backendConn = c
			break
		}
		dialErr = err
		b.markFailed(time.Now())
		p.r.logger.Warn("tcp connect to backend", "route", e.route.ID, "backend", b.addr, "err", err)
	}
	if backendConn == nil {
		fail := routerError{code: "H14", desc: "No backends available"}
		var ne net.Error
		switch {
		case b == nil:
		case errors.As(dialErr, &ne) && ne.Timeout():
			fail.code, fail.desc = "H19", "Backend connection timeout"
		default:
			fail.code, fail.desc = "H21", "Backend connection refused"
		}
		p.logConn(e, client, b, fail, 0, 0, start)
		return
	}
	if !p.track(backendConn) {
		backendConn.Close()
		return
	}
	defer p.untrack(backendConn)
	defer backendConn.Close()
	b.inflight.Add(1)
	defer b.inflight.Add(-1)

	watch := newIdleWatch(p.r.cfg.TCPIdleTimeout, func() {
		p.r.logger.Debug("tcp connection idle, closing", "route", e.route.ID, "backend", b.addr, "timeout", p.r.cfg.TCPIdleTimeout)
		client.Close()
		backendConn.Close()
	})
	defer watch.stop()
	done := make(chan struct{})
	var in int64
	go func() {
		defer close(done)
		in = p.copy(backendConn, activeReader{client, watch})
		closeWrite(backendConn)
	}()
	out := p.copy(client, activeReader{backendConn, watch})
	closeWrite(client)
	<-done
	p.logConn(e, client, b, routerError{}, in, out, start)
}

// logConn ships the line of a connection, when its route has them.
func (p *tcpProxy) logConn(e *routeEntry, client net.Conn, b *backend, fail routerError, in, out int64, start time.Time) {
	if p.r.cfg.RequestLog == nil || !logsRequests(e.route) {
		return
	}
	var addr string
	if b != nil {
		addr = b.addr
	}
	p.r.logConn(e, client.RemoteAddr(), addr, fail, in, out, start)
}

// copy copies src to dst through a pooled buffer and returns the bytes
// copied.
func (p *tcpProxy) copy(dst net.Conn, src io.Reader) int64 {
	buf := p.r.buffers.Get()
	defer p.r.buffers.Put(buf)
	// Only dst's Write: a *net.TCPConn's ReadFrom would ignore buf.
	n, _ := io.CopyBuffer(struct{ io.Writer }{dst}, src, buf)
	return n
}

// closeWrite passes an end of stream on: it shuts down c's writing side
// where c can (TCP, TLS), else closes c.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	c.Close()
}

// closeListeners stops accepting on every TCP route.
func (p *tcpProxy) closeListeners() {
	p.mu.Lock()
	p.closed = true
	for port, lns := range p.listeners {
		closeAll(lns)
		delete(p.listeners, port)
	}
	p.mu.Unlock()
	p.acceptWG.Wait()
}

// closeConns cuts every open TCP connection.
func (p *tcpProxy) closeConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// wait waits for open connections to end, or for ctx.
func (p *tcpProxy) wait(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		p.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// The goroutine above ends once closeConns has cut the rest,
		// which Run does next before waiting again without a deadline.
	}
}
