// Package server is the blobstore's HTTP API (see package blobstore for the
// routes) over any blobstore.Backend, and Run, which wires a backend, the
// listener and service discovery together for cmd/blobstore.
//
// Bodies stream in both directions: an upload goes from the socket through
// the backend's hash and into storage, a download from storage to the
// socket through http.ServeContent (which also answers Range, If-Range and
// the conditional headers), so memory per request stays constant whatever
// the blob's size. Each read of a body and each write of a reply has its
// own deadline (Options.IdleTimeout): a transfer may take as long as it
// needs while it progresses, and a client that stalls is cut off.
//
// GET /metrics serves the blobstore's metrics (metrics.go) to the key only;
// the blob path "metrics" is reserved for it.
package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/blobstore/signed"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/metrics"
)

// DefaultMaxSize is the upload limit when Options.MaxSize is zero: large
// enough for slugs and build caches of big apps.
const DefaultMaxSize int64 = 5 << 30

// Options configures a Handler.
type Options struct {
	// MaxSize is the largest blob accepted, in bytes; DefaultMaxSize when 0.
	MaxSize int64
	// AuthKey is the cluster key: requests carry it, or a URL signed with
	// it. Empty admits everyone (a cluster run without a key).
	AuthKey string
	// Now is the clock signed URLs expire by; time.Now when nil.
	Now func() time.Time
	// IdleTimeout is how long one read of an upload's body or one write
	// of a reply may block before the connection is closed;
	// DefaultIdleTimeout when zero.
	IdleTimeout time.Duration
	// Registry is where the handler counts its requests and bytes, and
	// what it serves at GET /metrics; nil: a registry of its own
	// (metrics.NewRegistry).
	Registry *prometheus.Registry
}

// Handler serves the blobstore HTTP API over a backend.
type Handler struct {
	backend blobstore.Backend
	opts    Options
	log     *slog.Logger
	// routes counts each request and hands it to serveAPI or the metrics.
	routes   http.Handler
	received prometheus.Counter
	sent     prometheus.Counter
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns the API handler for backend.
func NewHandler(backend blobstore.Backend, opts Options, log *slog.Logger) *Handler {
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.Registry == nil {
		opts.Registry = metrics.NewRegistry()
	}
	h := &Handler{backend: backend, opts: opts, log: log}
	h.routes = h.instrument(opts.Registry)
	return h
}

// ServeHTTP serves the API and GET /metrics, counting every request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.routes.ServeHTTP(w, r) }

// serveAPI routes by method. The whole URL path is the blob path; it is
// deliberately not run through http.ServeMux, whose cleaning would turn
// "/a/../b" into a redirect to "/b" instead of the 400 it deserves.
func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request) {
	d := idle{rc: http.NewResponseController(w), timeout: h.opts.IdleTimeout}
	// net/http flushes the end of the reply after this returns; that
	// write too must not wait for a stalled client for ever.
	defer d.renewWrite()
	r.Body = idleBody{ReadCloser: r.Body, idle: d, counted: h.received}
	if err := h.serve(w, r, d); err != nil {
		h.writeError(w, r, err)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, d idle) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, DELETE")
		return httpjson.Errorf(httpjson.CodeMethodNotAllowed, "method %s not allowed", r.Method)
	}
	if r.URL.Path == "/" && r.Method == http.MethodGet {
		return h.list(w, r)
	}
	p, err := blobstore.CleanPath(r.URL.Path)
	if err != nil {
		return err
	}
	if p == reservedPath {
		return &blobstore.PathError{Path: p, Reason: "reserved for the blobstore's metrics"}
	}
	grant, err := h.authorize(r, p)
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodPut:
		return h.put(w, r, p, grant)
	case http.MethodDelete:
		return h.delete(w, r, p, grant)
	default:
		return h.get(&idleWriter{ResponseWriter: w, idle: d, counted: h.sent}, r, p)
	}
}

// authorize admits a request that carries the cluster key (grant nil) or
// a signed URL for its method and path (the grant); the refusal is one of
// package signed's errors.
func (h *Handler) authorize(r *http.Request, p string) (*signed.Grant, error) {
	if authkey.Valid(r, h.opts.AuthKey) {
		return nil, nil
	}
	return signed.Verify(h.opts.AuthKey, r.Method, p, r.URL.RawQuery, h.opts.Now())
}

// claim uses up a signed URL's nonce; key holders have none to use.
func (h *Handler) claim(r *http.Request, grant *signed.Grant) error {
	if grant == nil {
		return nil
	}
	return h.backend.ClaimNonce(r.Context(), grant.Nonce, grant.Expires)
}

func (h *Handler) put(w http.ResponseWriter, r *http.Request, p string, grant *signed.Grant) error {
	if r.ContentLength > h.opts.MaxSize {
		return fmt.Errorf("content length %d: %w", r.ContentLength, blobstore.ErrTooLarge)
	}
	if err := h.claim(r, grant); err != nil {
		return err
	}
	start := time.Now()
	body := http.MaxBytesReader(w, r.Body, h.opts.MaxSize)
	info, err := h.backend.Put(r.Context(), p, body)
	if err != nil {
		return err
	}
	h.log.Info("blob stored", "path", p, "size", info.Size, "etag", info.ETag, "signed", grant != nil, "duration", time.Since(start))
	w.Header().Set("ETag", quoteETag(info.ETag))
	// 200 rather than 201 for new blobs too: a backend cannot tell creation
	// from replacement without racing a concurrent writer, and clients only
	// need to know the blob is stored.
	httpjson.Write(w, http.StatusOK, info)
	return nil
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, p string) error {
	content, info, err := h.backend.Open(r.Context(), p)
	if err != nil {
		return err
	}
	defer content.Close()
	hdr := w.Header()
	hdr.Set("ETag", quoteETag(info.ETag))
	// Blobs are opaque bytes; naming a fixed type keeps ServeContent from
	// sniffing the content.
	hdr.Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", info.ModTime, content)
	return nil
}

// list answers GET /?prefix=…&after=…&limit=… with a JSON array of Info.
// Only the key allows it: a signed URL names one blob.
func (h *Handler) list(w http.ResponseWriter, r *http.Request) error {
	if !authkey.Valid(r, h.opts.AuthKey) {
		return signed.ErrUnsigned
	}
	q := r.URL.Query()
	limit := blobstore.MaxListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return httpjson.ValidationError("limit", "limit must be a whole number from 1, not %q", v)
		}
		limit = min(n, blobstore.MaxListLimit)
	}
	list, err := h.backend.List(r.Context(), q.Get("prefix"), q.Get("after"), limit)
	if err != nil {
		return err
	}
	if list == nil {
		list = []blobstore.Info{} // [] rather than null
	}
	httpjson.Write(w, http.StatusOK, list)
	return nil
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request, p string, grant *signed.Grant) error {
	if err := h.claim(r, grant); err != nil {
		return err
	}
	if err := h.backend.Delete(r.Context(), p); err != nil {
		return err
	}
	h.log.Info("blob deleted", "path", p)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// writeError maps backend and validation errors to API errors, in one
// place; anything unexpected is logged and sent as a bare 500.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		pathErr  *blobstore.PathError
		tooLarge *http.MaxBytesError
		apiErr   *httpjson.Error
	)
	switch {
	case errors.As(err, &apiErr):
	case errors.As(err, &pathErr):
		apiErr = httpjson.ValidationError("path", "%s", pathErr.Reason)
	case errors.Is(err, blobstore.ErrNotFound):
		apiErr = httpjson.NotFound("no blob at %s", r.URL.Path)
	case errors.Is(err, signed.ErrUnsigned):
		w.Header().Set("WWW-Authenticate", `Basic realm="flynn"`)
		apiErr = httpjson.Errorf(httpjson.CodeUnauthorized, "missing or wrong cluster key, and no signed URL")
	case errors.Is(err, signed.ErrBadSignature):
		apiErr = httpjson.Errorf(httpjson.CodeUnauthorized, "the signed URL does not allow %s %s", r.Method, r.URL.Path)
	case errors.Is(err, signed.ErrExpired), errors.Is(err, signed.ErrMalformed):
		apiErr = httpjson.Errorf(httpjson.CodeUnauthorized, "%v", err)
	case errors.Is(err, blobstore.ErrNonceUsed):
		apiErr = httpjson.Errorf(httpjson.CodeConflict, "this signed URL was already used: upload URLs work once")
	case errors.Is(err, blobstore.ErrTooLarge), errors.As(err, &tooLarge):
		apiErr = httpjson.Errorf(httpjson.CodeRequestTooLarge, "blob is larger than the limit of %d bytes", h.opts.MaxSize)
	case errors.Is(err, io.ErrUnexpectedEOF), r.Context().Err() != nil:
		// The client went away mid-upload or mid-request: its fault, and
		// probably nobody reads the reply.
		h.log.Info("request aborted", "method", r.Method, "path", r.URL.Path, "err", err)
		apiErr = httpjson.ValidationError("", "request aborted: %v", err)
	default:
		h.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		httpjson.WriteError(w, err) // a generic 500: internals stay in the log
		return
	}
	httpjson.WriteError(w, apiErr)
}

func quoteETag(etag string) string { return `"` + etag + `"` }
