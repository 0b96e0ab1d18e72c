package gitreceive

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// connLimiter is the SSH listener: it closes, as soon as they are
// accepted, the connections beyond the server's caps (in total and per
// client address), and hands on the others as clientConns under the
// server's time bounds. It owns those connections: closeAll hangs up on
// them, wait waits until all are closed.
type connLimiter struct {
	net.Listener
	cfg     Config
	log     *slog.Logger
	metrics *serverMetrics

	mu      sync.Mutex
	closed  bool // by closeAll: a connection accepted meanwhile is refused
	byIP    map[string]int
	conns   map[*clientConn]struct{}
	open    sync.WaitGroup
	refused refusalLog
}

func newConnLimiter(ln net.Listener, cfg Config, log *slog.Logger, m *serverMetrics) *connLimiter {
	return &connLimiter{Listener: ln, cfg: cfg, log: log, metrics: m, byIP: map[string]int{}, conns: map[*clientConn]struct{}{}}
}

// Accept returns the next connection within the caps.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if c := l.admit(conn); c != nil {
			return c, nil
		}
		conn.Close()
	}
}

// admit counts conn against the caps and returns it wrapped, or nil when
// it is over one.
func (l *connLimiter) admit(conn net.Conn) *clientConn {
	ip := clientIP(conn.RemoteAddr())
	l.mu.Lock()
	defer l.mu.Unlock()
	var reason, label string
	switch {
	case l.closed:
		return nil
	case len(l.conns) >= l.cfg.MaxConns:
		reason, label = "too many connections", refusedMaxConns
	case l.byIP[ip] >= l.cfg.MaxConnsPerIP:
		reason, label = "too many connections from the address", refusedMaxConnsPerIP
	default:
		now := time.Now()
		c := &clientConn{
			Conn:              conn,
			log:               l.log.With("remote", conn.RemoteAddr().String()),
			idle:              l.cfg.IdleTimeout,
			handshake:         l.cfg.HandshakeTimeout,
			maxLife:           l.cfg.MaxSessionTime,
			handshakeDeadline: now.Add(min(l.cfg.HandshakeTimeout, l.cfg.MaxSessionTime)),
			maxDeadline:       now.Add(l.cfg.MaxSessionTime),
		}
		c.release = func() { l.release(c, ip) }
		if err := conn.SetDeadline(c.handshakeDeadline); err != nil {
			return nil
		}
		l.byIP[ip]++
		l.conns[c] = struct{}{}
		l.metrics.conns.Inc()
		l.open.Add(1)
		return c
	}
	l.metrics.refused.WithLabelValues(label).Inc()
	l.refused.note(l.log, reason, ip)
	return nil
}

func (l *connLimiter) release(c *clientConn, ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
	l.metrics.conns.Dec()
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
	l.open.Done()
}

// closeAll hangs up on every connection, those still in their handshake
// included (the SSH server only knows the others).
func (l *connLimiter) closeAll() {
	l.mu.Lock()
	l.closed = true
	conns := make([]*clientConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// wait waits until every connection handed on is closed.
func (l *connLimiter) wait() { l.open.Wait() }

// clientIP is the address a connection comes from, without its port.
func clientIP(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// refusalLog logs refused connections at most once per refusalLogEvery,
// with how many it did not log, so that a flood of connections does not
// become a flood of log lines.
type refusalLog struct {
	last       time.Time
	suppressed int
}

const refusalLogEvery = 10 * time.Second

func (r *refusalLog) note(log *slog.Logger, reason, ip string) {
	now := time.Now()
	if now.Sub(r.last) < refusalLogEvery {
		r.suppressed++
		return
	}
	log.Warn("refused a connection", "reason", reason, "remote_ip", ip, "refused_unlogged", r.suppressed)
	r.last, r.suppressed = now, 0
}

// clientConn is one client connection under the server's time bounds.
// Until its first command starts (start) it must be done by the
// handshake deadline; from then on every read and write pushes its
// deadline IdleTimeout ahead, never past MaxSessionTime after it was
// accepted. A deadline covers both directions, so a write also extends
// the read that waits for the client: a connection is idle only when no
// byte goes either way.
type clientConn struct {
	net.Conn
	log                      *slog.Logger
	idle, handshake, maxLife time.Duration
	handshakeDeadline        time.Time
	maxDeadline              time.Time
	release                  func()

	mu        sync.Mutex
	started   bool
	closeOnce sync.Once
	whyOnce   sync.Once
}

// start ends the handshake phase: the client's command runs.
func (c *clientConn) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started = true
	_ = c.Conn.SetDeadline(c.deadlineLocked())
}

func (c *clientConn) deadlineLocked() time.Time {
	if !c.started {
		return c.handshakeDeadline
	}
	return minTime(time.Now().Add(c.idle), c.maxDeadline)
}

func (c *clientConn) touch() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		return nil // the handshake deadline stands
	}
	return c.Conn.SetDeadline(c.deadlineLocked())
}

// Read reads from the client, at most until the connection's deadline.
func (c *clientConn) Read(p []byte) (int, error) {
	if err := c.touch(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	c.explain(err)
	return n, err
}

// Write writes to the client, at most until the connection's deadline.
func (c *clientConn) Write(p []byte) (int, error) {
	if err := c.touch(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	c.explain(err)
	return n, err
}

// SetDeadline, SetReadDeadline and SetWriteDeadline do nothing: the
// connection keeps its own deadlines, which the SSH server would
// otherwise clear at every read and write (it sets the zero time when it
// has no timeouts of its own).
func (c *clientConn) SetDeadline(time.Time) error { return nil }

// SetReadDeadline does nothing; see SetDeadline.
func (c *clientConn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline does nothing; see SetDeadline.
func (c *clientConn) SetWriteDeadline(time.Time) error { return nil }

// Close closes the connection and frees its place under the caps.
func (c *clientConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(c.release)
	return err
}

// explain hangs up on a connection that ran into a bound, and logs, once,
// which. Hanging up at once matters: the SSH server cancels the session on
// the failed read, and the session's exit status would otherwise still go
// out, since a write pushes the deadline ahead again.
func (c *clientConn) explain(err error) {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return
	}
	_ = c.Conn.Close()
	c.whyOnce.Do(func() {
		c.mu.Lock()
		started := c.started
		c.mu.Unlock()
		switch {
		case !started && time.Now().Before(c.maxDeadline):
			c.log.Info("closed a connection: no command started in time", "handshake_timeout", c.handshake)
		case !time.Now().Before(c.maxDeadline):
			c.log.Info("closed a connection: open for the longest a session may last", "max_session_time", c.maxLife)
		default:
			c.log.Info("closed an idle connection", "idle_timeout", c.idle)
		}
	})
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// keepAlive asks the client for a sign of life every interval until stop
// is called, and hangs up on it when an answer takes longer than timeout.
// It runs while the client waits on the server (for a lock, a build slot,
// the build, the deployment): the answers are bytes from the client,
// which keep a live client's connection from going idle, while a client
// that is gone no longer answers and its push is cancelled. OpenSSH and
// Go's clients answer "keepalive@openssh.com" (with a failure, as to any
// request they do not know), as OpenSSH's sshd ClientAliveInterval relies
// on.
func keepAlive(conn gossh.Conn, log *slog.Logger, interval, timeout time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			hangUp := time.AfterFunc(timeout, func() {
				log.Info("hung up on a client that stopped answering", "timeout", timeout)
				conn.Close()
			})
			_, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
			hangUp.Stop()
			if err != nil {
				return // the connection is closed
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
