package blobstoretest

import (
	"context"
	"io"
	"sync"

	"github.com/openflynn/flynn/blobstore"
)

// observer wraps a backend to report when an upload starts reading its body
// and when it returns, so tests wait on events instead of sleeping.
type observer struct {
	blobstore.Backend

	mu   sync.Mutex
	subs map[int]func(putEvent)
	next int
}

var _ blobstore.Backend = (*observer)(nil)

type putEventKind int

const (
	putReading putEventKind = iota // the backend read the first bytes of the body
	putDone                        // Put returned; err is its result
)

type putEvent struct {
	path string
	kind putEventKind
	err  error
}

func newObserver(b blobstore.Backend) *observer {
	return &observer{Backend: b, subs: map[int]func(putEvent){}}
}

// subscribe calls f (from the uploading goroutine) for every event until
// the returned cancel is called.
func (o *observer) subscribe(f func(putEvent)) (cancel func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	id := o.next
	o.next++
	o.subs[id] = f
	return func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		delete(o.subs, id)
	}
}

func (o *observer) emit(e putEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, f := range o.subs {
		f(e)
	}
}

func (o *observer) Put(ctx context.Context, path string, r io.Reader) (blobstore.Info, error) {
	info, err := o.Backend.Put(ctx, path, &firstReadReader{r: r, first: func() { o.emit(putEvent{path: path, kind: putReading}) }})
	o.emit(putEvent{path: path, kind: putDone, err: err})
	return info, err
}

type firstReadReader struct {
	r     io.Reader
	first func()
	seen  bool
}

func (f *firstReadReader) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if n > 0 && !f.seen {
		f.seen = true
		f.first()
	}
	return n, err
}

// waitFor returns a channel that receives the first event for path of the
// given kind, and a cancel for the subscription.
func (o *observer) waitFor(path string, kind putEventKind) (<-chan putEvent, func()) {
	ch := make(chan putEvent, 1)
	var once sync.Once
	cancel := o.subscribe(func(e putEvent) {
		if e.path == path && e.kind == kind {
			once.Do(func() { ch <- e })
		}
	})
	return ch, cancel
}
