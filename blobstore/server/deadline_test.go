package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/pkg/authkey"
)

// oneBlob serves data under every path and reports each reader's Close,
// which the handler calls when it is done with the download.
type oneBlob struct {
	fakeBackend
	data   []byte
	closed chan struct{}
}

func (b *oneBlob) Open(context.Context, string) (io.ReadSeekCloser, blobstore.Info, error) {
	return &notifyClose{Reader: bytes.NewReader(b.data), closed: b.closed}, blobstore.Info{Size: int64(len(b.data)), ETag: "e", ModTime: time.Now()}, nil
}

type notifyClose struct {
	*bytes.Reader
	closed chan struct{}
	once   sync.Once
}

func (n *notifyClose) Close() error {
	n.once.Do(func() { close(n.closed) })
	return nil
}

// slowServer serves h with a small send buffer on every connection, so
// that a client that stops reading blocks the handler's writes after a
// few tens of KiB rather than after the megabytes the kernel would buffer.
func slowServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		if tcp, ok := c.(*net.TCPConn); ok && st == http.StateNew {
			_ = tcp.SetWriteBuffer(32 << 10)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// dialGet sends a GET with the key on a new connection with a small
// receive buffer and returns the connection, unread.
func dialGet(t *testing.T, srv *httptest.Server, key string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.(*net.TCPConn).SetReadBuffer(32 << 10); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "http://blobstore/apps/x/slug.tgz", nil)
	authkey.Set(req, key)
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestStalledDownloadIsCut checks that a client that stops reading a
// download is cut off after IdleTimeout, which frees what the download
// holds in the backend.
func TestStalledDownloadIsCut(t *testing.T) {
	b := &oneBlob{data: bytes.Repeat([]byte("slug"), 1<<20), closed: make(chan struct{})}
	srv := slowServer(t, NewHandler(b, Options{AuthKey: "k", IdleTimeout: 200 * time.Millisecond}, slog.New(slog.DiscardHandler)))
	dialGet(t, srv, "k") // and never read
	select {
	case <-b.closed:
	case <-time.After(20 * time.Second):
		t.Fatal("the download of a client that stopped reading still runs after 20s, with an idle timeout of 200ms")
	}
}

// TestSlowDownloadIsNotCut checks that IdleTimeout bounds each write, not
// the download: a client that reads slowly but steadily gets the whole
// blob though it takes many times IdleTimeout.
func TestSlowDownloadIsNotCut(t *testing.T) {
	const (
		idleTimeout = 400 * time.Millisecond
		size        = 2 << 20
		step        = 16 << 10
		pace        = 10 * time.Millisecond // 128 steps: about 3 idle timeouts in all
	)
	b := &oneBlob{data: bytes.Repeat([]byte("0123456789abcdef"), size/16), closed: make(chan struct{})}
	srv := slowServer(t, NewHandler(b, Options{AuthKey: "k", IdleTimeout: idleTimeout}, slog.New(slog.DiscardHandler)))
	conn := dialGet(t, srv, "k")
	if err := conn.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, step), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	tick := time.NewTicker(pace) // the client's pace, not a wait for the server
	defer tick.Stop()
	var got bytes.Buffer
	for {
		_, err := io.CopyN(&got, resp.Body, step)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes in %v: %v", got.Len(), time.Since(start), err)
		}
		<-tick.C
	}
	took := time.Since(start)
	if !bytes.Equal(got.Bytes(), b.data) {
		t.Fatalf("got %d bytes, want the %d of the blob", got.Len(), len(b.data))
	}
	if took < 2*idleTimeout {
		t.Fatalf("the download took %v, too fast to show that a transfer longer than the idle timeout (%v) survives", took, idleTimeout)
	}
	t.Logf("%d bytes in %v with an idle timeout of %v", got.Len(), took, idleTimeout)
}

// deadlineRecorder is a ResponseWriter that records the write deadlines
// set on it and sends everything through ReadFrom when asked to.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	deadlines int
	readFroms int
}

func (d *deadlineRecorder) SetWriteDeadline(time.Time) error {
	d.deadlines++
	return nil
}

func (d *deadlineRecorder) ReadFrom(r io.Reader) (int64, error) {
	d.readFroms++
	return d.Body.ReadFrom(r)
}

// TestIdleWriterReadFrom checks that a download sent through the
// underlying ReadFrom (sendfile for a file) goes in steps, each with a
// fresh deadline, and arrives whole.
func TestIdleWriterReadFrom(t *testing.T) {
	rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	w := &idleWriter{ResponseWriter: rec, idle: idle{rc: http.NewResponseController(rec), timeout: time.Minute}}
	data := bytes.Repeat([]byte{7}, 3*readFromStep+5)
	src := &io.LimitedReader{R: bytes.NewReader(data), N: int64(len(data)) - 1}
	n, err := io.Copy(w, src)
	if err != nil || n != int64(len(data))-1 {
		t.Fatalf("copy = %d, %v; want %d bytes", n, err, len(data)-1)
	}
	if !bytes.Equal(rec.Body.Bytes(), data[:len(data)-1]) || src.N != 0 {
		t.Fatalf("got %d bytes (limit left %d), want the %d bytes of the limited source", rec.Body.Len(), src.N, len(data)-1)
	}
	if rec.readFroms != 4 || rec.deadlines != 4 {
		t.Fatalf("%d ReadFrom calls with %d deadlines, want 4 and 4 (steps of %d bytes)", rec.readFroms, rec.deadlines, readFromStep)
	}
}

// drain reads every upload to its end and reports how each ended.
type drain struct {
	fakeBackend
	done chan error
}

func (d *drain) Put(_ context.Context, _ string, r io.Reader) (blobstore.Info, error) {
	_, err := io.Copy(io.Discard, r)
	d.done <- err
	return blobstore.Info{}, err
}

func (d *drain) ClaimNonce(context.Context, string, time.Time) error { return nil }

// TestStalledUploadIsCut checks that an upload whose client stops sending
// ends after IdleTimeout rather than holding what the backend gave it (a
// pooled connection, a transaction) for ever.
func TestStalledUploadIsCut(t *testing.T) {
	b := &drain{done: make(chan error, 1)}
	srv := slowServer(t, NewHandler(b, Options{AuthKey: "k", IdleTimeout: 200 * time.Millisecond}, slog.New(slog.DiscardHandler)))
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := fmt.Sprintf("PUT /apps/x/slug.tgz HTTP/1.1\r\nHost: blobstore\r\nAuthorization: Basic %s\r\nContent-Length: %d\r\n\r\nthe first bytes only", basicAuth("k"), 1<<20)
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-b.done:
		if err == nil {
			t.Fatal("the stalled upload's body read to its end without an error")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the upload of a client that stopped sending still runs after 20s, with an idle timeout of 200ms")
	}
}

func basicAuth(key string) string {
	req := httptest.NewRequest(http.MethodGet, "http://x/", nil)
	authkey.Set(req, key)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}
