package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// errBodyTimeout is the error of a request body read that waited longer
// than Config.BodyReadTimeout.
var errBodyTimeout = errors.New("client sent no body data within the body read timeout")

// deadlineBody is a request body each of whose reads must return within
// timeout: before a read, the connection's read deadline moves to timeout
// from now. This bounds a client that stalls in its body, as one total
// ReadTimeout would, without cutting an upload that keeps sending however
// long it takes (a 1 GiB push over a slow link).
//
// Moving a deadline is cheap on HTTP/1 (a timer update) but a message to
// the connection's goroutine on HTTP/2, so it moves at most 16 times per
// timeout rather than on every read.
//
// The deadline never passes limit, when there is one: the server's
// deadline for the whole request (Config.ReadTimeout), which moving the
// connection's deadline would otherwise lift.
//
// The transport reads the body on a goroutine of its own, which may still
// be reading when the handler returns; once finish is called no deadline
// is touched any more, since by then the server may have set its own for
// the connection's next request.
type deadlineBody struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	limit   time.Time

	// timedOut is set once a read failed on the deadline.
	timedOut atomic.Bool

	mu sync.Mutex
	// set is when the deadline was last moved, and deadline what it was
	// moved to; both zero before the first read.
	set, deadline time.Time
	// done is set by finish: the deadline belongs to the server again.
	done bool
}

// deadlineBodyKey is the request context key of a request's deadlineBody:
// the reverse proxy hands its error handler the request with the body
// wrapped in types of its own, but with the context.
type deadlineBodyKey struct{}

// newDeadlineBody bounds the reads of body, the body of the request w
// answers, by timeout each, and all of them by limit unless it is zero.
func newDeadlineBody(w http.ResponseWriter, body io.ReadCloser, timeout time.Duration, limit time.Time) *deadlineBody {
	return &deadlineBody{body: body, rc: http.NewResponseController(w), timeout: timeout, limit: limit}
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if now := time.Now(); !b.done && now.Sub(b.set) > b.timeout/16 {
		d := now.Add(b.timeout)
		if !b.limit.IsZero() && d.After(b.limit) {
			d = b.limit
		}
		// A server that cannot set deadlines (ErrNotSupported) leaves the
		// body unbounded, as before.
		if b.rc.SetReadDeadline(d) == nil {
			b.set, b.deadline = now, d
		}
	}
	b.mu.Unlock()
	n, err := b.body.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		// HTTP/1's server starts a read of its own once the body is at
		// its end, to notice the client leaving; left with this deadline
		// it would take the deadline for the client leaving, and cancel
		// the request while the backend is still answering.
		b.clear()
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.timedOut.Store(true)
		err = fmt.Errorf("%w: %w", errBodyTimeout, err)
	}
	return n, err
}

// stalled reports whether the body's reads failed on the deadline. The
// failed read cancels the request's context before it returns here, so
// the transport may report the cancellation first: a deadline already
// past counts too.
func (b *deadlineBody) stalled() bool {
	if b.timedOut.Load() {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.done && !b.deadline.IsZero() && !time.Now().Before(b.deadline)
}

// Close closes the client's body.
func (b *deadlineBody) Close() error { return b.body.Close() }

// clear removes the deadline of a body read to its end.
func (b *deadlineBody) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done && !b.deadline.IsZero() {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	b.done = true
}

// finish hands the connection's deadline back to the server; the handler
// calls it before it returns. A deadline left in place bounds the server's
// discarding of an unread rest of the body, which is as well.
func (b *deadlineBody) finish() {
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
}
