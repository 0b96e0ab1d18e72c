package server

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultDrainTimeout is Config.DrainTimeout's default.
const DefaultDrainTimeout = 2 * time.Second

// drainer lets a stopping controller finish with its clients before it
// shuts down. When it stops, a controller is no longer registered in
// discoverd (flynn-host deregisters a job before signalling it), but
// clients still hold keep-alive connections to it, and a client that
// reaches "http://controller.discoverd" pools its connections to every
// instance together: http.Server.Shutdown would close them under a
// request just being sent. Draining, the controller answers every request
// as usual but with "Connection: close", so each client leaves of its own
// accord after one more answer, until none is left or the drain time is
// up; only then does it shut down.
type drainer struct {
	handler  http.Handler
	draining atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newDrainer(h http.Handler) *drainer {
	return &drainer{handler: h, conns: map[net.Conn]struct{}{}}
}

func (d *drainer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d.draining.Load() {
		w.Header().Set("Connection", "close")
	}
	d.handler.ServeHTTP(w, r)
}

// connState is the server's ConnState hook: it counts open connections.
func (d *drainer) connState(c net.Conn, s http.ConnState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch s {
	case http.StateNew:
		d.conns[c] = struct{}{}
	case http.StateHijacked, http.StateClosed:
		delete(d.conns, c)
	}
}

func (d *drainer) open() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

// drain starts draining and returns once no connection is open or ctx
// ends. It polls: connections close rarely, and the request path should
// not pay for a condition variable.
func (d *drainer) drain(ctx context.Context) {
	d.draining.Store(true)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for d.open() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
