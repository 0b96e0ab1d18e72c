package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openflynn/flynn/router"
)

// backend is one live instance of a service, shared by every request that
// picked it; in-flight requests keep using it after it left the pool, which
// is what lets a leaving instance drain.
type backend struct {
	id   string
	addr string
	// stickyToken names this backend in sticky cookies (see sticky.go).
	stickyToken string
	// inflight counts requests and connections currently on this backend.
	inflight atomic.Int64
	// failedUntil holds, in Unix nanoseconds, when a connect failure stops
	// counting against this backend: until then it is picked only when no
	// other backend is left, which covers the time between a backend dying
	// and discoverd reporting it gone.
	failedUntil atomic.Int64
	// conns are the fasthttp engine's idle connections to this backend;
	// gone is set once it left its pool, when they are closed and no more
	// are kept.
	conns backendConns
	gone  atomic.Bool
}

// failureCooldown is how long a backend that refused a connection is avoided.
const failureCooldown = 2 * time.Second

func (b *backend) markFailed(now time.Time) { b.failedUntil.Store(now.Add(failureCooldown).UnixNano()) }

func (b *backend) healthy(now int64) bool { return b.failedUntil.Load() <= now }

// pool is the set of live backends of one discoverd service. Routes of the
// same service share it. The set is replaced atomically on every change.
type pool struct {
	service  string
	backends atomic.Pointer[[]*backend]
	// refs counts the routes using this pool; guarded by poolSet.mu.
	refs   int
	cancel context.CancelFunc
	done   chan struct{}
	// ready is closed once the first set of backends is in, which the
	// router waits for before it serves (Router.awaitBackends).
	ready chan struct{}
	// gotFirst is whether ready is closed; only the watch touches it.
	gotFirst bool
}

func (p *pool) list() []*backend {
	if bs := p.backends.Load(); bs != nil {
		return *bs
	}
	return nil
}

// size is the number of live backends.
func (p *pool) size() int { return len(p.list()) }

// poolSet owns one pool per service in use and the goroutine watching each.
type poolSet struct {
	source    BackendSource
	stickyKey []byte
	logger    *slog.Logger
	// ctx is the parent of every watch; it is the Run context of the Router.
	ctx context.Context

	mu    sync.Mutex
	pools map[string]*pool
	wg    sync.WaitGroup
}

// acquire returns the pool of service, starting its watch when it is new.
func (s *poolSet) acquire(service string) *pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pools[service]; p != nil {
		p.refs++
		return p
	}
	ctx, cancel := context.WithCancel(s.ctx)
	p := &pool{service: service, refs: 1, cancel: cancel, done: make(chan struct{}), ready: make(chan struct{})}
	s.pools[service] = p
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(p.done)
		s.watch(ctx, p)
	}()
	return p
}

// release drops one reference; the last one stops the watch. Requests that
// still hold the pool's backends finish normally.
func (s *poolSet) release(p *pool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.refs--
	if p.refs == 0 {
		delete(s.pools, p.service)
		p.cancel()
		for _, b := range p.list() {
			b.gone.Store(true)
			b.conns.closeIdle()
		}
	}
}

// wait blocks until every watch has stopped; the caller cancels s.ctx first.
func (s *poolSet) wait() { s.wg.Wait() }

// closeIdle closes the idle backend connections of every pool.
func (s *poolSet) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pools {
		for _, b := range p.list() {
			b.conns.closeIdle()
		}
	}
}

// watch follows the service's backends until ctx ends, retrying when the
// source cannot be reached.
func (s *poolSet) watch(ctx context.Context, p *pool) {
	logger := s.logger.With("service", p.service)
	backoff := 100 * time.Millisecond
	for {
		updates, err := s.source.WatchBackends(ctx, p.service)
		if err == nil {
			backoff = 100 * time.Millisecond
			for set := range updates {
				s.update(p, set, logger)
			}
		} else if ctx.Err() == nil {
			logger.Warn("watch backends", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// update replaces the pool's set, keeping the backend objects (and their
// in-flight counts) of instances that stay.
func (s *poolSet) update(p *pool, set []router.Backend, logger *slog.Logger) {
	old := map[string]*backend{}
	for _, b := range p.list() {
		old[b.id+"\x00"+b.addr] = b
	}
	next := make([]*backend, 0, len(set))
	seen := map[string]bool{}
	for _, rb := range set {
		key := rb.ID + "\x00" + rb.Addr
		if seen[key] || rb.Addr == "" {
			continue
		}
		seen[key] = true
		b := old[key]
		if b == nil {
			b = &backend{id: rb.ID, addr: rb.Addr, stickyToken: stickyToken(s.stickyKey, p.service, rb.Addr)}
			logger.Info("backend up", "instance", rb.ID, "addr", rb.Addr)
		}
		delete(old, key)
		next = append(next, b)
	}
	for _, b := range old {
		logger.Info("backend down", "instance", b.id, "addr", b.addr, "in_flight", b.inflight.Load())
		b.gone.Store(true)
		b.conns.closeIdle()
	}
	p.backends.Store(&next)
	if !p.gotFirst {
		p.gotFirst = true
		close(p.ready)
	}
}

// stickyToken is the HMAC of a backend's service and address: the value a
// sticky cookie carries. Clients see neither the address nor a way to forge
// a cookie naming a backend they were not given.
func stickyToken(key []byte, service, addr string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(service))
	m.Write([]byte{0})
	m.Write([]byte(addr))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}
