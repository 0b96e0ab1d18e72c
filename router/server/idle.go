package server

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// idleWatch ends a byte stream (a TCP route's connection, an upgraded HTTP
// connection) that carried no bytes either way for a while. Each direction
// marks its reads through touch, which costs one clock read and one atomic
// store; one timer per stream checks the mark, rather than a deadline
// moved on every read, because a stream that is busy one way only (a
// download, a log tail) must not be cut for the silence of the other way.
type idleWatch struct {
	timeout time.Duration
	start   time.Time
	// last is when a read last returned bytes, as time since start.
	last   atomic.Int64
	onIdle func()

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

// newIdleWatch calls onIdle, once, when timeout passes without a touch;
// timeout 0 never does. stop must be called when the stream ends.
func newIdleWatch(timeout time.Duration, onIdle func()) *idleWatch {
	w := &idleWatch{timeout: timeout, start: time.Now(), onIdle: onIdle}
	if timeout > 0 {
		w.mu.Lock()
		w.timer = time.AfterFunc(timeout, w.check)
		w.mu.Unlock()
	}
	return w
}

// touch marks the stream as active now.
func (w *idleWatch) touch() { w.last.Store(int64(time.Since(w.start))) }

func (w *idleWatch) check() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	idle := time.Since(w.start) - time.Duration(w.last.Load())
	if idle < w.timeout {
		w.timer.Reset(w.timeout - idle)
		w.mu.Unlock()
		return
	}
	w.stopped = true
	w.mu.Unlock()
	w.onIdle()
}

// stop ends the watch; onIdle is not called after it returns unless it was
// already running.
func (w *idleWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
}

// activeReader marks its watch on every read that returns bytes.
type activeReader struct {
	r io.Reader
	w *idleWatch
}

func (a activeReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.w.touch()
	}
	return n, err
}
