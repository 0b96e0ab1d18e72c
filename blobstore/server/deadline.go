package server

import (
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultIdleTimeout is Options.IdleTimeout when zero: a client that
// neither sends nor accepts a byte for a minute is gone or hostile.
const DefaultIdleTimeout = time.Minute

// readFromStep is how much of a download one ReadFrom call (sendfile for
// a file) may move under one deadline: the deadline is renewed between
// steps, so a slow but steady client (a step per IdleTimeout, about 1 KiB/s
// at the default) is never cut, whatever the blob's size. Writes are at
// most 32 KiB, so this is the tighter of the two bounds on a client's pace.
const readFromStep = 64 << 10

// idle renews a connection's deadlines before each read of a request body
// and each write of a response, so that a transfer of any length goes on
// as long as it progresses while one that stalls for IdleTimeout ends.
// http.Server's ReadTimeout and WriteTimeout cannot do that: they bound the
// whole request, which would cut a large legitimate download.
//
// Where the ResponseWriter cannot set deadlines (a recorder in a test) the
// renewals do nothing.
type idle struct {
	rc      *http.ResponseController
	timeout time.Duration
}

func (d idle) renewWrite() { _ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout)) }
func (d idle) renewRead()  { _ = d.rc.SetReadDeadline(time.Now().Add(d.timeout)) }

// idleBody is a request body whose every read gets its own deadline. Once
// it is drained net/http clears the deadline itself, for its own
// background read of the connection.
type idleBody struct {
	io.ReadCloser
	idle idle
	// counted, when set, counts the bytes read.
	counted prometheus.Counter
}

func (b idleBody) Read(p []byte) (int, error) {
	b.idle.renewRead()
	n, err := b.ReadCloser.Read(p)
	if b.counted != nil {
		b.counted.Add(float64(n))
	}
	return n, err
}

// idleWriter is a ResponseWriter whose every write gets its own deadline.
type idleWriter struct {
	http.ResponseWriter
	idle idle
	// counted, when set, counts the bytes written.
	counted prometheus.Counter
}

var _ io.ReaderFrom = (*idleWriter)(nil)

func (w *idleWriter) Write(p []byte) (int, error) {
	w.idle.renewWrite()
	n, err := w.ResponseWriter.Write(p)
	w.count(int64(n))
	return n, err
}

func (w *idleWriter) count(n int64) {
	if w.counted != nil {
		w.counted.Add(float64(n))
	}
}

// ReadFrom keeps the underlying writer's ReadFrom, which sends a file
// (the fs backend's content) with sendfile(2), in steps of readFromStep
// bytes with a deadline each. src is unwrapped from the *io.LimitedReader
// that http.ServeContent passes, since sendfile looks through one
// LimitedReader only.
func (w *idleWriter) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := readerFrom(w.ResponseWriter)
	if !ok {
		return io.Copy(struct{ io.Writer }{w}, src)
	}
	lr, limited := src.(*io.LimitedReader)
	if !limited {
		lr = &io.LimitedReader{R: src, N: 1<<63 - 1}
	}
	var total int64
	for lr.N > 0 {
		step := min(lr.N, readFromStep)
		w.idle.renewWrite()
		n, err := rf.ReadFrom(&io.LimitedReader{R: lr.R, N: step})
		w.count(n)
		total += n
		lr.N -= n
		if err != nil || n < step { // n < step: src is drained
			return total, err
		}
	}
	return total, nil
}

// Unwrap lets http.ResponseController reach the connection.
func (w *idleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// readerFrom finds the io.ReaderFrom of w or of a writer it wraps:
// net/http's, which sends a file with sendfile(2), lies under the request
// metrics' recorder, which has none. Going past the recorder loses it
// nothing: ServeContent has written the status, which is all it records,
// before it sends the body.
func readerFrom(w http.ResponseWriter) (io.ReaderFrom, bool) {
	for {
		if rf, ok := w.(io.ReaderFrom); ok {
			return rf, true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil, false
		}
		w = u.Unwrap()
	}
}
