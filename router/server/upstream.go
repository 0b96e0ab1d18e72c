package server

import (
	"bufio"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The fasthttp engine's connections to backends. fasthttp's own client
// (HostClient) cannot be told that the client went away, cannot proxy an
// upgrade, and hides the buffered reader a streaming copy needs to see
// whether more of the body is at hand; so the engine speaks HTTP/1.1 to
// backends itself, over these connections, in the request's own goroutine
// (net/http's Transport uses two more per connection).

// upstreamBufferSize is the size of each backend connection's read and
// write buffers.
const upstreamBufferSize = 16 << 10

// clientCheckInterval is how often a request waiting on its backend looks
// whether its client is still there: a backend that takes a minute to
// answer a client that left must not hold the connection for that minute.
const clientCheckInterval = time.Second

var (
	// errClientGone is the error of a wait on a backend whose client
	// closed its connection meanwhile.
	errClientGone = errors.New("client closed the connection")
	// errResponseHeaderTimeout is the error of a backend that sent no
	// response headers within Config.ResponseHeaderTimeout.
	errResponseHeaderTimeout = errors.New("backend sent no response headers in time")
)

// upstreamConn is one keep-alive connection to a backend.
type upstreamConn struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	// idleSince is when the connection went back to its backend's idle
	// list.
	idleSince time.Time
	// reused is set while a request uses a connection an earlier request
	// used: a failure before any byte of the answer may then be the
	// backend having closed it while idle, and the request may go again
	// on a new connection.
	reused bool

	// While a request waits on the backend, reads time out every
	// clientCheckInterval so that the client can be looked at (client,
	// nil when not to look), and fail once headerDeadline passes, when it
	// is set.
	client         net.Conn
	headerDeadline time.Time
	// deadline is the read deadline set on conn.
	deadline time.Time
	// failure is the error Read gave up with, kept because fasthttp's
	// header reader does not wrap it.
	failure error
}

// Read reads from the backend, looking at the client each time the
// connection's deadline passes.
func (c *upstreamConn) Read(p []byte) (int, error) {
	for {
		n, err := c.conn.Read(p)
		if n > 0 || err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		now := time.Now()
		if !c.headerDeadline.IsZero() && !now.Before(c.headerDeadline) {
			c.failure = errResponseHeaderTimeout
			return 0, c.failure
		}
		if c.client != nil && peerClosed(c.client) {
			c.failure = errClientGone
			return 0, c.failure
		}
		if err := c.setDeadline(c.nextDeadline(now)); err != nil {
			return 0, err
		}
	}
}

// nextDeadline is when the next look at the client is due.
func (c *upstreamConn) nextDeadline(now time.Time) time.Time {
	next := now.Add(clientCheckInterval)
	if !c.headerDeadline.IsZero() && c.headerDeadline.Before(next) {
		return c.headerDeadline
	}
	return next
}

// watch readies the connection for a request from client whose response
// headers are due by headerDeadline. The deadline already set is kept
// when it comes at least half a check interval from now and not after
// headerDeadline: moving a deadline costs a timer update, which most
// requests, answered long before it, can do without.
func (c *upstreamConn) watch(client net.Conn, headerDeadline time.Time) error {
	c.client, c.headerDeadline = client, headerDeadline
	now := time.Now()
	if !c.deadline.IsZero() && c.deadline.Sub(now) >= clientCheckInterval/2 && !c.deadline.After(headerDeadline) {
		return nil
	}
	return c.setDeadline(c.nextDeadline(now))
}

// setDeadline sets the connection's read deadline.
func (c *upstreamConn) setDeadline(d time.Time) error {
	c.deadline = d
	return c.conn.SetReadDeadline(d)
}

func (c *upstreamConn) close() { c.conn.Close() }

// backendConns are a backend's idle keep-alive connections, newest last.
type backendConns struct {
	mu   sync.Mutex
	idle []*upstreamConn
}

// upstreamDialer opens and keeps connections to backends.
type upstreamDialer struct {
	dialer      net.Dialer
	maxIdle     int
	idleTimeout time.Duration
}

func newUpstreamDialer(cfg *Config) *upstreamDialer {
	return &upstreamDialer{
		dialer:      net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second},
		maxIdle:     cfg.MaxIdleConnsPerBackend,
		idleTimeout: 90 * time.Second,
	}
}

// get returns an idle connection to b or a new one; a failure to connect
// is a *dialError. With check, an idle connection is first looked at
// (a system call) to see that the backend has not closed it: for a
// request that cannot go again if it turns out to have been closed.
func (d *upstreamDialer) get(b *backend, check bool) (*upstreamConn, error) {
	now := time.Now()
	bc := &b.conns
	bc.mu.Lock()
	for n := len(bc.idle); n > 0; n = len(bc.idle) {
		c := bc.idle[n-1]
		bc.idle[n-1] = nil
		bc.idle = bc.idle[:n-1]
		if now.Sub(c.idleSince) < d.idleTimeout {
			bc.mu.Unlock()
			if check && idleBroken(c) {
				c.close()
				bc.mu.Lock()
				continue
			}
			c.reused = true
			return c, nil
		}
		c.close()
	}
	bc.mu.Unlock()
	return d.dial(b)
}

// dial opens a new connection to b.
func (d *upstreamDialer) dial(b *backend) (*upstreamConn, error) {
	conn, err := d.dialer.Dial("tcp", b.addr)
	if err != nil {
		return nil, &dialError{err: err}
	}
	c := &upstreamConn{conn: conn}
	c.br = bufio.NewReaderSize(c, upstreamBufferSize)
	c.bw = bufio.NewWriterSize(conn, upstreamBufferSize)
	return c, nil
}

// put keeps c, whose last exchange ended cleanly, for the next request to b,
// or closes it when b has enough idle connections or left its pool.
func (d *upstreamDialer) put(b *backend, c *upstreamConn) {
	c.client, c.reused = nil, false
	c.idleSince = time.Now()
	bc := &b.conns
	bc.mu.Lock()
	if len(bc.idle) < d.maxIdle && !b.gone.Load() {
		bc.idle = append(bc.idle, c)
		c = nil
	}
	bc.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// closeIdle closes b's idle connections: b left its pool.
func (bc *backendConns) closeIdle() {
	bc.mu.Lock()
	idle := bc.idle
	bc.idle = nil
	bc.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// peerClosed reports whether the peer of conn closed it (or reset it),
// without waiting and without taking any byte it sent: it peeks at the
// socket. A connection it cannot look into counts as open.
func peerClosed(conn net.Conn) bool {
	closed, _ := peek(conn)
	return closed
}

// idleBroken reports whether a kept backend connection cannot carry
// another request: the backend closed it, or sent something unasked (some
// servers say 408 before they close an idle connection).
func idleBroken(c *upstreamConn) bool {
	if c.br.Buffered() > 0 {
		return true
	}
	closed, pending := peek(c.conn)
	return closed || pending
}

// peek looks at conn's socket without waiting and without taking any byte:
// whether the peer closed it (or reset it), and whether bytes are pending.
func peek(conn net.Conn) (closed, pending bool) {
	for {
		switch c := conn.(type) {
		case interface{ NetConn() net.Conn }: // *tls.Conn
			conn = c.NetConn()
			continue
		case syscall.Conn:
			raw, err := c.SyscallConn()
			if err != nil {
				return false, false
			}
			// Control, not Read: another goroutine may be reading (the
			// net/http engine's Transport always is), and a peek that
			// does not wait needs no turn.
			_ = raw.Control(func(fd uintptr) {
				var b [1]byte
				n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
				switch {
				case n > 0:
					pending = true
				case err == nil:
					closed = true
				case err != unix.EAGAIN && err != unix.EINTR:
					closed = true
				}
			})
			return closed, pending
		}
		return false, false
	}
}

// chunkedWriter writes what is written to it as HTTP/1.1 chunks.
type chunkedWriter struct{ w *bufio.Writer }

func (cw chunkedWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var hex [16]byte
	i := len(hex)
	for n := len(p); n > 0; n >>= 4 {
		i--
		hex[i] = "0123456789abcdef"[n&0xf]
	}
	cw.w.Write(hex[i:])
	cw.w.WriteString("\r\n")
	cw.w.Write(p)
	_, err := cw.w.WriteString("\r\n")
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// close ends the chunked body.
func (cw chunkedWriter) close() error {
	_, err := cw.w.WriteString("0\r\n\r\n")
	return err
}
