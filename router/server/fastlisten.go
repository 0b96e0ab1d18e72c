package server

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
)

// connLimiter is a listener that holds at most max connections open,
// leaving the rest in the kernel's accept queue (Config.MaxConns), and
// keeps every open one so the drain can cut what is left (fasthttp's
// shutdown waits for connections but cannot close busy ones).
type connLimiter struct {
	net.Listener
	sem  chan struct{}
	done chan struct{}
	once sync.Once

	mu    sync.Mutex
	conns map[*limitedConn]struct{}
}

func newConnLimiter(ln net.Listener, max int) *connLimiter {
	return &connLimiter{Listener: ln, sem: make(chan struct{}, max), done: make(chan struct{}), conns: map[*limitedConn]struct{}{}}
}

// Accept waits for a free slot, then for a connection.
func (l *connLimiter) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	lc := &limitedConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[lc] = struct{}{}
	l.mu.Unlock()
	return lc, nil
}

// Close stops accepting; open connections carry on.
func (l *connLimiter) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// closeConns cuts every open connection.
func (l *connLimiter) closeConns() {
	l.mu.Lock()
	conns := make([]*limitedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// limitedConn gives its slot back when closed.
type limitedConn struct {
	net.Conn
	l    *connLimiter
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		<-c.l.sem
	})
	return err
}

// CloseWrite shuts down the writing side, for a spliced connection's half
// close.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// SyscallConn reaches the socket, which clientGone peeks at.
func (c *limitedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// handoffListener passes connections that fasthttp accepted but does not
// serve (TLS connections that negotiated h2) to a net/http server, whose
// ConnState must be the listener's connState: net/http serves HTTP/2 only
// on a *tls.Conn itself, so no wrapper can tell when it is done with one.
type handoffListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once

	mu      sync.Mutex
	serving map[net.Conn]chan struct{}
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{}), serving: map[net.Conn]chan struct{}{}}
}

// Accept returns the next connection handed over.
func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops the handing over.
func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is the address of the listener the connections came from.
func (l *handoffListener) Addr() net.Addr { return l.addr }

// serve hands c over and waits until the server is done with it: fasthttp
// closes a connection once its handler returns.
func (l *handoffListener) serve(c net.Conn) error {
	finished := make(chan struct{})
	l.mu.Lock()
	l.serving[c] = finished
	l.mu.Unlock()
	select {
	case l.conns <- c:
		<-finished
		return nil
	case <-l.done:
		l.mu.Lock()
		delete(l.serving, c)
		l.mu.Unlock()
		return net.ErrClosed
	}
}

// connState is the net/http server's ConnState: it learns there when a
// connection handed over is done with.
func (l *handoffListener) connState(c net.Conn, st http.ConnState) {
	if st != http.StateClosed && st != http.StateHijacked {
		return
	}
	l.mu.Lock()
	finished := l.serving[c]
	delete(l.serving, c)
	l.mu.Unlock()
	if finished != nil {
		close(finished)
	}
}
