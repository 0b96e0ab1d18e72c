// Package blobstoretest is the behaviour suite every blobstore backend
// passes: the same tests run against the filesystem and the Postgres
// stores, through the real HTTP handler and Go client, so both behave
// alike to clients. It also holds the large streamed transfer test that
// checks the server's memory stays flat.
package blobstoretest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/blobstore/client"
	"github.com/openflynn/flynn/blobstore/server"
	"github.com/openflynn/flynn/blobstore/signed"
)

// Key is the cluster key the suite's servers require.
const Key = "suite-cluster-key"

// Leftovers counts what finished or failed uploads left behind in a
// backend: temporary files, chunks no blob refers to. The suite requires
// zero whenever no upload is running.
type Leftovers func(ctx context.Context) (int, error)

// Factory returns a fresh, empty backend for one test, with its Leftovers
// counter. It registers its own cleanup on t.
type Factory func(t testing.TB) (blobstore.Backend, Leftovers)

// env is one backend served over HTTP for one test.
type env struct {
	backend   *observer
	leftovers Leftovers
	srv       *httptest.Server
	client    *client.Client
	// http is the suite's own HTTP client, whose idle connections are closed
	// at cleanup so leak checks see no stray goroutines.
	http *http.Client
	// clock is the server's clock for signed URLs.
	clock *clock
}

// clock is a settable time, starting at the real one.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newEnv(t testing.TB, factory Factory, maxSize int64) *env {
	t.Helper()
	b, left := factory(t)
	obs := newObserver(b)
	clk := &clock{now: time.Now()}
	h := server.NewHandler(obs, server.Options{MaxSize: maxSize, AuthKey: Key, Now: clk.Now}, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(h)
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(func() {
		hc.CloseIdleConnections()
		srv.Close()
	})
	return &env{backend: obs, leftovers: left, srv: srv, client: newClient(srv.URL, Key, hc), http: hc, clock: clk}
}

func newClient(url, key string, hc *http.Client) *client.Client {
	c := client.New(url, key)
	c.HTTP = hc
	return c
}

func (e *env) put(t *testing.T, path string, data []byte) *blobstore.Info {
	t.Helper()
	info, err := e.client.Put(context.Background(), path, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("put %s: %v", path, err)
	}
	return info
}

// get returns the blob's content and ETag, or the error.
func (e *env) get(path string) ([]byte, string, error) {
	body, info, err := e.client.Get(context.Background(), path)
	if err != nil {
		return nil, "", err
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	return data, info.ETag, err
}

// mustHold fails t unless path holds exactly want.
func (e *env) mustHold(t *testing.T, path string, want []byte) {
	t.Helper()
	got, etag, err := e.get(path)
	if err != nil {
		t.Fatalf("get %s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("get %s: %d bytes (sha256 %s), want %d bytes (sha256 %s)", path, len(got), hashOf(got), len(want), hashOf(want))
	}
	if etag != hashOf(want) {
		t.Fatalf("get %s: ETag %s, want %s", path, etag, hashOf(want))
	}
}

// mustBeMissing fails t unless path holds no blob.
func (e *env) mustBeMissing(t *testing.T, path string) {
	t.Helper()
	if _, _, err := e.get(path); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("get %s: err = %v, want not found", path, err)
	}
}

// mustBeClean fails t if the backend holds leftovers.
func (e *env) mustBeClean(t *testing.T) {
	t.Helper()
	n, err := e.leftovers(context.Background())
	if err != nil {
		t.Fatalf("count leftovers: %v", err)
	}
	if n != 0 {
		t.Fatalf("backend holds %d leftovers of uploads, want 0", n)
	}
}

// do sends an HTTP request with the cluster key to the env's server and
// returns the response with its body read.
func (e *env) do(t *testing.T, method, path string, header http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	return e.send(t, Key, method, path, header, body)
}

// doSigned is do without the key: path's query must carry a signature.
func (e *env) doSigned(t *testing.T, method, path string, header http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	return e.send(t, "", method, path, header, body)
}

func (e *env) send(t *testing.T, key, method, path string, header http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.SetBasicAuth("", key)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, data
}

// rawRequest writes req verbatim on a new connection, so that paths reach
// the server exactly as an attacker would send them, and returns the
// response status.
func (e *env) rawRequest(t *testing.T, req string) int {
	t.Helper()
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", firstLine(req), err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// Run runs the behaviour suite against the backends factory makes.
func Run(t *testing.T, factory Factory) {
	t.Run("PutGetStatDelete", func(t *testing.T) { testPutGetStatDelete(t, factory) })
	t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, factory) })
	t.Run("PathsArePlainNames", func(t *testing.T) { testPathsArePlainNames(t, factory) })
	t.Run("Range", func(t *testing.T) { testRange(t, factory) })
	t.Run("ConditionalGet", func(t *testing.T) { testConditionalGet(t, factory) })
	t.Run("Auth", func(t *testing.T) { testAuth(t, factory) })
	t.Run("BadPaths", func(t *testing.T) { testBadPaths(t, factory) })
	t.Run("TooLarge", func(t *testing.T) { testTooLarge(t, factory) })
	t.Run("AbortedUpload", func(t *testing.T) { testAbortedUpload(t, factory) })
	t.Run("ConcurrentWriters", func(t *testing.T) { testConcurrentWriters(t, factory) })
	t.Run("OpenReaderKeepsVersion", func(t *testing.T) { testOpenReaderKeepsVersion(t, factory) })
	t.Run("SignedURLs", func(t *testing.T) { testSignedURLs(t, factory) })
	t.Run("SignedPutSingleUse", func(t *testing.T) { testSignedPutSingleUse(t, factory) })
	t.Run("SignedPutRace", func(t *testing.T) { testSignedPutRace(t, factory) })
	t.Run("ClaimNonce", func(t *testing.T) { testClaimNonce(t, factory) })
	t.Run("List", func(t *testing.T) { testList(t, factory) })
}

func testPutGetStatDelete(t *testing.T, factory Factory) {
	e := newEnv(t, factory, 0)
	ctx := context.Background()
	const path = "apps/8d2f/slug-v1.tgz"
	data := Bytes(1, 300<<10)

	e.mustBeMissing(t, path)
	info := e.put(t, "/"+path, data)
	if info.Path != path || info.Size != int64(len(data)) || info.ETag != hashOf(data) {
		t.Fatalf("put = %+v, want path %s, size %d, etag %s", info, path, len(data), hashOf(data))
	}
	e.mustHold(t, path, data)

	st, err := e.client.Stat(ctx, path)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	if st.Size != int64(len(data)) || st.ETag != hashOf(data) || st.ModTime.IsZero() {
		t.Fatalf("stat = %+v, want size %d, etag %s and a modification time", st, len(data), hashOf(data))
	}

	empty := e.put(t, "apps/8d2f/empty", nil)
	if empty.Size != 0 || empty.ETag != hashOf(nil) {
		t.Fatalf("put empty = %+v", empty)
	}
	e.mustHold(t, "apps/8d2f/empty", []byte{})

	if err := e.client.Delete(ctx, path); err != nil {
		t.Fatalf("delete: %v", err)
	}
	e.mustBeMissing(t, path)
	if err := e.client.Delete(ctx, path); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("second delete: err = %v, want not found", err)
	}
	e.mustHold(t, "apps/8d2f/empty", []byte{})
	e.mustBeClean(t)
}

func testOverwrite(t *testing.T, factory Factory) {
	e := newEnv(t, factory, 0)
	const path = "apps/8d2f/cache.tgz"
	v1, v2, v3 := Bytes(1, 200<<10), Bytes(2, 70<<10), Bytes(3, 500<<10)
	for _, v := range [][]byte{v1, v2, v3} {
		e.put(t, path, v)
		e.mustHold(t, path, v)
	}
	e.mustBeClean(t)
}

// testPathsArePlainNames checks that a blob may share its name with a
// "directory" of others, and that similar names stay distinct.
func testPathsArePlainNames(t *testing.T, factory Factory) {
	e := newEnv(t, factory, 0)
	blobs := map[string][]byte{
		"a":      Bytes(1, 10),
		"a/b":    Bytes(2, 20),
		"a/b/c":  Bytes(3, 30),
		"A":      Bytes(4, 40),
		"a.b":    Bytes(5, 50),
		"a/..b":  Bytes(6, 60),
		"x/y/z:": Bytes(7, 70),
	}
	for p, data := range blobs {
		e.put(t, p, data)
	}
	for p, data := range blobs {
		e.mustHold(t, p, data)
	}
	if err := e.client.Delete(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	e.mustBeMissing(t, "a")
	e.mustHold(t, "a/b", blobs["a/b"])
}

func testRange(t *testing.T, factory Factory) {
	e := newEnv(t, factory, 0)
	const path = "ranged"
	// Large enough to span several chunks of a chunked backend configured
	// with small chunks for the suite.
	data := Bytes(9, 300<<10+17)
	e.put(t, path, data)
	n := len(data)
	tests := []struct {
		name       string
		rangeHdr   string
		wantStatus int
		want       []byte // for 206
	}{
		{"first bytes", "bytes=0-9", http.StatusPartialContent, data[0:10]},
		{"single byte", "bytes=5-5", http.StatusPartialContent, data[5:6]},
		{"across 64 KiB boundaries", "bytes=65530-131080", http.StatusPartialContent, data[65530:131081]},
		{"open ended", fmt.Sprintf("bytes=%d-", n-100), http.StatusPartialContent, data[n-100:]},
		{"suffix", "bytes=-17", http.StatusPartialContent, data[n-17:]},
		{"end past size", fmt.Sprintf("bytes=%d-%d", n-3, n+1000), http.StatusPartialContent, data[n-3:]},
		{"unsatisfiable", fmt.Sprintf("bytes=%d-", n), http.StatusRequestedRangeNotSatisfiable, nil},
		{"malformed", "bytes=x-y", http.StatusRequestedRangeNotSatisfiable, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(t, http.MethodGet, "/"+path, http.Header{"Range": {tt.rangeHdr}}, nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.want != nil && !bytes.Equal(body, tt.want) {
				t.Fatalf("body: %d bytes, want %d bytes (%s)", len(body), len(tt.want), resp.Header.Get("Content-Range"))
			}
		})
	}
	t.Run("two ranges", func(t *testing.T) {
		resp, body := e.do(t, http.MethodGet, "/"+path, http.Header{"Range": {"bytes=0-1,100000-100003"}}, nil)
		if resp.StatusCode != http.StatusPartialContent || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") {
			t.Fatalf("status %d, content type %q; want 206 multipart/byteranges", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if !bytes.Contains(body, data[0:2]) || !bytes.Contains(body, data[100000:100004]) {
			t.Fatal("multipart body lacks one of the ranges")
		}
	})
	t.Run("HEAD with range", func(t *testing.T) {
		resp, body := e.do(t, http.MethodHead, "/"+path, http.Header{"Range": {"bytes=0-9"}}, nil)
		if resp.StatusCode != http.StatusPartialContent || resp.ContentLength != 10 || len(body) != 0 {
			t.Fatalf("status %d, length %d, %d body bytes; want 206, 10, 0", resp.StatusCode, resp.ContentLength, len(body))
		}
	})
}

func testConditionalGet(t *testing.T, factory Factory) {
	e := newEnv(t, factory, 0)
	const path = "cond"
	data := Bytes(4, 1000)
	e.put(t, path, data)
	etag := `"` + hashOf(data) + `"`
	other := `"` + hashOf([]byte("other")) + `"`
	tests := []struct {
		name       string
		header     http.Header
		wantStatus int
		wantBody   []byte
	}{
		{"matching If-None-Match", http.Header{"If-None-Match": {etag}}, http.StatusNotModified, nil},
		{"weak If-None-Match", http.Header{"If-None-Match": {"W/" + etag}}, http.StatusNotModified, nil},
		{"If-None-Match list", http.Header{"If-None-Match": {other + ", " + etag}}, http.StatusNotModified, nil},
		{"If-None-Match star", http.Header{"If-None-Match": {"*"}}, http.StatusNotModified, nil},
		{"stale If-None-Match", http.Header{"If-None-Match": {other}}, http.StatusOK, data},
		{"If-Range matches", http.Header{"If-Range": {etag}, "Range": {"bytes=0-3"}}, http.StatusPartialContent, data[:4]},
		{"If-Range stale", http.Header{"If-Range": {other}, "Range": {"bytes=0-3"}}, http.StatusOK, data},
		{"If-Match stale", http.Header{"If-Match": {other}}, http.StatusPreconditionFailed, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(t, http.MethodGet, "/"+path, tt.header, nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if resp.Header.Get("ETag") != etag && resp.StatusCode != http.StatusPreconditionFailed {
				t.Fatalf("ETag = %q, want %q", resp.Header.Get("ETag"), etag)
			}
			if tt.wantBody != nil && !bytes.Equal(body, tt.wantBody) {
				t.Fatalf("body: %d bytes, want %d", len(body), len(tt.wantBody))
			}
		})
	}
}

func testAuth(t *testing.T, factory Factory) {
	e := newEnv(t, factory, 0)
	const path = "apps/x/slug.tgz"
	data := Bytes(5, 100)
	e.put(t, path, data)

	anonymous := newClient(e.srv.URL, "", e.http)
	wrong := newClient(e.srv.URL, "guess", e.http)
	ctx := context.Background()
	for name, c := range map[string]*client.Client{"no key": anonymous, "wrong key": wrong} {
		if _, err := c.Put(ctx, path, strings.NewReader("evil")); err == nil || !strings.Contains(err.Error(), "unauthorized") {
			t.Errorf("%s: put err = %v, want unauthorized", name, err)
		}
		if _, err := c.Put(ctx, "new", strings.NewReader("evil")); err == nil {
			t.Errorf("%s: put of a new blob succeeded", name)
		}
		if err := c.Delete(ctx, path); err == nil || !strings.Contains(err.Error(), "unauthorized") {
			t.Errorf("%s: delete err = %v, want unauthorized", name, err)
		}
	}
	e.mustHold(t, path, data)
	e.mustBeMissing(t, "new")

	// Reads need the key or a signed URL too: one app must not read
	// another's slug.
	for name, c := range map[string]*client.Client{"no key": anonymous, "wrong key": wrong} {
		if _, _, err := c.Get(ctx, path); err == nil || !strings.Contains(err.Error(), "unauthorized") {
			t.Errorf("%s: get err = %v, want unauthorized", name, err)
		}
		if _, err := c.Stat(ctx, path); err == nil || !strings.Contains(err.Error(), "unauthorized") {
			t.Errorf("%s: stat err = %v, want unauthorized", name, err)
		}
	}
	e.mustBeClean(t)
}

// testBadPaths sends traversal attempts and malformed names verbatim and
// checks each gets a 4xx and that nothing was written anywhere.
func testBadPaths(t *testing.T, factory Factory) {
	e := newEnv(t, factory, 0)
	const victim = "etc/passwd"
	original := Bytes(6, 64)
	e.put(t, victim, original)

	targets := []string{
		"/../etc/passwd",
		"/apps/../etc/passwd",
		"/apps/x/../../etc/passwd",
		"/%2e%2e/etc/passwd",
		"/%2E%2E/etc/passwd",
		"/.%2e/etc/passwd",
		"/apps/%2e%2e%2f%2e%2e%2fetc/passwd",
		"/apps%2f..%2fetc%2fpasswd",
		"/%252e%252e/etc/passwd",
		"//etc/passwd",
		"/./etc/passwd",
		"/etc/./passwd",
		`/etc\passwd`,
		"/..%5cetc%5cpasswd",
		"/etc/passwd%00",
		"/",
		"/etc/",
		"/etc//passwd",
		"/a%20b",
		"http://blobstore/../etc/passwd",
	}
	body := "overwritten"
	for _, target := range targets {
		for _, method := range []string{http.MethodPut, http.MethodGet, http.MethodDelete} {
			if target == "/" && method == http.MethodGet {
				continue // the listing (testList)
			}
			req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: blobstore\r\nAuthorization: Basic %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
				method, target, basicAuth(Key), len(body), body)
			if method != http.MethodPut {
				req = fmt.Sprintf("%s %s HTTP/1.1\r\nHost: blobstore\r\nAuthorization: Basic %s\r\nConnection: close\r\n\r\n", method, target, basicAuth(Key))
			}
			status := e.rawRequest(t, req)
			if status < 400 || status > 499 {
				t.Errorf("%s %s: status %d, want 4xx", method, target, status)
			}
		}
	}
	e.mustHold(t, victim, original)
	for _, p := range []string{"passwd", "etc", "apps/etc/passwd", "a b", "etc/passwd%00"} {
		if _, _, err := e.get(p); err == nil {
			t.Errorf("blob %q exists after the bad requests", p)
		}
	}
	e.mustBeClean(t)
}

func basicAuth(key string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth("", key)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

func testTooLarge(t *testing.T, factory Factory) {
	const limit = 256 << 10
	e := newEnv(t, factory, limit)
	ctx := context.Background()

	if _, err := e.client.Put(ctx, "exact", bytes.NewReader(Bytes(1, limit))); err != nil {
		t.Fatalf("put of exactly the limit: %v", err)
	}

	// Known length: refused before the body is read.
	_, err := e.client.Put(ctx, "declared", bytes.NewReader(Bytes(2, limit+1)))
	if !errors.Is(err, blobstore.ErrTooLarge) {
		t.Fatalf("put with Content-Length over the limit: err = %v, want too large", err)
	}
	e.mustBeMissing(t, "declared")

	// Unknown length (chunked): refused once the limit is crossed. Hiding
	// the length behind a plain reader makes the client stream it chunked.
	done, cancel := e.backend.waitFor("streamed", putDone)
	defer cancel()
	_, err = e.client.Put(ctx, "streamed", io.LimitReader(NewGenerated(3, limit+1), limit+1))
	if !errors.Is(err, blobstore.ErrTooLarge) {
		t.Fatalf("chunked put over the limit: err = %v, want too large", err)
	}
	if ev := <-done; ev.err == nil {
		t.Fatal("backend stored the oversized chunked upload")
	}
	e.mustBeMissing(t, "streamed")
	e.mustBeClean(t)
}

// testAbortedUpload cuts the connection halfway through a body, once the
// backend is streaming it, for a new blob and over an existing one.
func testAbortedUpload(t *testing.T, factory Factory) {
	e := newEnv(t, factory, 0)
	const size = 1 << 20
	existing := Bytes(7, 1000)
	e.put(t, "existing", existing)

	for _, path := range []string{"fresh", "existing"} {
		t.Run(path, func(t *testing.T) {
			reading, cancelReading := e.backend.waitFor(path, putReading)
			defer cancelReading()
			done, cancelDone := e.backend.waitFor(path, putDone)
			defer cancelDone()

			conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			head := fmt.Sprintf("PUT /%s HTTP/1.1\r\nHost: blobstore\r\nAuthorization: Basic %s\r\nContent-Length: %d\r\n\r\n", path, basicAuth(Key), size)
			if _, err := io.WriteString(conn, head); err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(conn, NewGenerated(8, size/2)); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, reading, "the backend to start reading the upload")
			conn.Close()
			if ev := waitEvent(t, done, "the aborted upload to return"); ev.err == nil {
				t.Fatal("backend accepted a truncated upload")
			}
			if path == "existing" {
				e.mustHold(t, path, existing)
			} else {
				e.mustBeMissing(t, path)
			}
			e.mustBeClean(t)
		})
	}
}

func waitEvent(t *testing.T, ch <-chan putEvent, what string) putEvent {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return putEvent{}
	}
}

// testConcurrentWriters has several uploads to one path in flight at once
// (each holds back the second half of its body until all have started),
// with readers fetching the blob meanwhile. Every read must be one whole
// upload, and the end state exactly one of them.
func testConcurrentWriters(t *testing.T, factory Factory) {
	e := newEnv(t, factory, 0)
	const (
		path    = "apps/x/slug.tgz"
		writers = 6
		size    = 512<<10 + 3
	)
	versions := map[string]int{}
	var bodies [writers][]byte
	for i := range bodies {
		bodies[i] = Bytes(uint64(100+i), size)
		versions[hashOf(bodies[i])] = i
	}

	allStarted := make(chan struct{})
	var mu sync.Mutex
	started := 0
	cancel := e.backend.subscribe(func(ev putEvent) {
		if ev.path != path || ev.kind != putReading {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if started++; started == writers {
			close(allStarted)
		}
	})
	defer cancel()

	ctx, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, writers+2)
	for i := range writers {
		wg.Go(func() {
			body := io.MultiReader(bytes.NewReader(bodies[i][:size/2]), gate{ctx: ctx, open: allStarted}, bytes.NewReader(bodies[i][size/2:]))
			if _, err := e.client.Put(ctx, path, body); err != nil {
				errs <- fmt.Errorf("writer %d: %w", i, err)
			}
		})
	}
	writersDone := make(chan struct{})
	var readers sync.WaitGroup
	for r := range 2 {
		readers.Go(func() {
			for reads := 0; ; reads++ {
				select {
				case <-writersDone:
					return
				default:
				}
				data, etag, err := e.get(path)
				if errors.Is(err, blobstore.ErrNotFound) {
					continue // no upload has finished yet
				}
				if err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
				if _, ok := versions[hashOf(data)]; !ok || etag != hashOf(data) {
					errs <- fmt.Errorf("reader %d read %d bytes that are no single upload (etag %s)", r, len(data), etag)
					return
				}
			}
		})
	}
	wg.Wait()
	close(writersDone)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	data, etag, err := e.get(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := versions[hashOf(data)]; !ok || etag != hashOf(data) {
		t.Fatalf("final blob (%d bytes, etag %s) is no single upload", len(data), etag)
	}
	e.mustBeClean(t)
}

// gate is a reader that returns nothing until open is closed, then EOF.
type gate struct {
	ctx  context.Context
	open <-chan struct{}
}

func (g gate) Read([]byte) (int, error) {
	select {
	case <-g.open:
		return 0, io.EOF
	case <-g.ctx.Done():
		return 0, g.ctx.Err()
	}
}

// testOpenReaderKeepsVersion checks the Backend contract that an open blob
// reads as the version it opened, even after an overwrite and a delete.
func testOpenReaderKeepsVersion(t *testing.T, factory Factory) {
	e := newEnv(t, factory, 0)
	ctx := context.Background()
	const path = "versioned"
	old := Bytes(10, 700<<10)
	e.put(t, path, old)

	r, info, err := e.backend.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if info.Size != int64(len(old)) || info.ETag != hashOf(old) {
		t.Fatalf("open: %+v", info)
	}
	head := make([]byte, 10)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	e.put(t, path, Bytes(11, 900<<10))
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Delete(ctx, path); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read after overwrite and delete: %v", err)
	}
	if !bytes.Equal(got, old) {
		t.Fatalf("open reader returned %d bytes (sha256 %s), want the old version", len(got), hashOf(got))
	}
	if pos, err := r.Seek(-5, io.SeekEnd); err != nil || pos != int64(len(old))-5 {
		t.Fatalf("seek from end = %d, %v; want %d", pos, err, len(old)-5)
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("seek before start succeeded")
	}
}

// testList checks listing by prefix, in bytewise path order, page by page
// in the backend and whole through the client, and that it needs the key.
func testList(t *testing.T, factory Factory) {
	e := newEnv(t, factory, 0)
	ctx := context.Background()
	sizes := map[string]int{
		"apps/a/slug-2.tgz": 20,
		"apps/a/cache.tgz":  10,
		"apps/a/slug-1.tgz": 30,
		"apps/ab/slug.tgz":  40,
		"apps/A/slug.tgz":   50,
		"other":             60,
	}
	before := time.Now().Add(-time.Minute)
	for p, n := range sizes {
		e.put(t, p, Bytes(uint64(n), n))
	}
	paths := func(list []blobstore.Info) []string {
		var ps []string
		for _, info := range list {
			ps = append(ps, info.Path)
		}
		return ps
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"apps/a/", []string{"apps/a/cache.tgz", "apps/a/slug-1.tgz", "apps/a/slug-2.tgz"}},
		{"apps/a", []string{"apps/a/cache.tgz", "apps/a/slug-1.tgz", "apps/a/slug-2.tgz", "apps/ab/slug.tgz"}},
		{"apps/", []string{"apps/A/slug.tgz", "apps/a/cache.tgz", "apps/a/slug-1.tgz", "apps/a/slug-2.tgz", "apps/ab/slug.tgz"}},
		{"", []string{"apps/A/slug.tgz", "apps/a/cache.tgz", "apps/a/slug-1.tgz", "apps/a/slug-2.tgz", "apps/ab/slug.tgz", "other"}},
		{"apps/b/", nil},
	}
	for _, tt := range tests {
		list, err := e.client.List(ctx, tt.prefix)
		if err != nil {
			t.Fatalf("list %q: %v", tt.prefix, err)
		}
		if got := paths(list); !slices.Equal(got, tt.want) {
			t.Errorf("list %q = %q, want %q", tt.prefix, got, tt.want)
		}
		for _, info := range list {
			data := Bytes(uint64(sizes[info.Path]), sizes[info.Path])
			if info.Size != int64(len(data)) || info.ETag != hashOf(data) || info.ModTime.Before(before) {
				t.Errorf("list %q: %+v, want size %d, etag %s and a recent time", tt.prefix, info, len(data), hashOf(data))
			}
		}
	}

	var pages [][]string
	after := ""
	for {
		page, err := e.backend.List(ctx, "apps/", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		pages = append(pages, paths(page))
		after = page[len(page)-1].Path
	}
	want := [][]string{{"apps/A/slug.tgz", "apps/a/cache.tgz"}, {"apps/a/slug-1.tgz", "apps/a/slug-2.tgz"}, {"apps/ab/slug.tgz"}}
	if !slices.EqualFunc(pages, want, slices.Equal) {
		t.Errorf("pages of 2 = %q, want %q", pages, want)
	}

	if err := e.client.Delete(ctx, "apps/a/slug-1.tgz"); err != nil {
		t.Fatal(err)
	}
	list, err := e.client.List(ctx, "apps/a/")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := paths(list), []string{"apps/a/cache.tgz", "apps/a/slug-2.tgz"}; !slices.Equal(got, want) {
		t.Errorf("list after a delete = %q, want %q", got, want)
	}

	anonymous := newClient(e.srv.URL, "", e.http)
	if _, err := anonymous.List(ctx, "apps/"); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("list without the key: err = %v, want unauthorized", err)
	}
	q, err := signed.Sign(Key, http.MethodGet, "apps/a/cache.tgz", e.clock.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := e.doSigned(t, http.MethodGet, "/?prefix=apps/&"+q.Encode(), nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("list with a signed GET of one blob: status %d, want 401", resp.StatusCode)
	}
}
