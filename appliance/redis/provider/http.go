package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// Path is where the API provisions: the provider's URL in the controller
// is http://:<key>@<address>/clusters, and a resource is removed with
// DELETE on /clusters/<id>.
const Path = "/clusters"

// maxBody bounds a provisioning request: {"config":{}} and little more.
const maxBody = 64 << 10

// Request is the body of a provisioning request, as the controller sends
// it (see controller.ResourceRequest).
type Request struct {
	// Config is the resource's config from `flynn resource add`.
	Config json.RawMessage `json:"config,omitempty"`
}

// ResourceConfig is what a Redis resource may be configured with: nothing
// yet. A config with any field is refused, so that a setting the provider
// does not know is not silently dropped.
type ResourceConfig struct{}

// Handler returns the provider's HTTP API. Every request but GET /health
// must carry key as its basic-auth password (compared in constant time);
// an empty key admits every request, for tests only.
//
//	POST   /clusters               {"config":{}} → 201 {"id": "…", "env": {"REDIS_URL": "…", …}}
//	DELETE /clusters/{id}          204; 404 when there is no such resource
//	GET    /clusters/{id}/backup   200 application/octet-stream: the server's dump (see the package doc)
//	PUT    /clusters/{id}          {"env": {"REDIS_PASSWORD": "…", "REDIS_PORT": "3000", …}} → 200 {"id": "…", "env": {…}}
//	POST   /clusters/{id}/restore  a dump → 200 {"keys": 12}
//	GET    /health                 200
//
// A backup that fails once its 200 is sent aborts the response, so the
// client reads a broken body rather than a short dump. See Backup,
// Recreate and Restore for the rest; the statuses come from apiError.
func Handler(p *Provider, key string, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{p: p, logger: logger}
	api := http.NewServeMux()
	api.HandleFunc("POST "+Path, h.wrap(h.provision))
	api.HandleFunc("DELETE "+Path+"/{id}", h.wrap(h.deprovision))
	api.HandleFunc("GET "+Path+"/{id}/backup", h.wrap(h.backup))
	api.HandleFunc("PUT "+Path+"/{id}", h.wrap(h.recreate))
	api.HandleFunc("POST "+Path+"/{id}/restore", h.wrap(h.restore))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("/", authkey.Require(key, api))
	return mux
}

type handler struct {
	p      *Provider
	logger *slog.Logger
}

// wrap turns a handler that returns an error into an http.HandlerFunc
// that writes it (see apiError).
func (h *handler) wrap(f func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			e := apiError(err)
			if e.Status() >= 500 {
				h.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			httpjson.WriteError(w, e)
		}
	}
}

func (h *handler) provision(w http.ResponseWriter, r *http.Request) error {
	if _, err := DecodeRequest(w, r); err != nil {
		return err
	}
	res, err := h.p.Provision(r.Context())
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, res)
	return nil
}

func (h *handler) deprovision(w http.ResponseWriter, r *http.Request) error {
	if err := h.p.Deprovision(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// StreamTimeout bounds the transfer of a backup or a restore, in place of
// the server's read and write timeouts, which are made for the short
// requests of provisioning.
const StreamTimeout = time.Hour

// streaming lifts the server's timeouts from a request that moves a dump,
// for StreamTimeout. A ResponseWriter that has no deadlines (a recorder)
// is left as it is.
func streaming(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(StreamTimeout)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
}

func (h *handler) backup(w http.ResponseWriter, r *http.Request) error {
	streaming(w)
	out := &lazyWriter{w: w}
	err := h.p.Backup(r.Context(), r.PathValue("id"), out)
	switch {
	case err != nil && out.started:
		h.logger.Error("backup failed after its response began; aborting it", "path", r.URL.Path, "err", err)
		panic(http.ErrAbortHandler)
	case err != nil:
		return err
	case !out.started:
		// An empty server: a dump of no commands.
		out.start()
	}
	return nil
}

// lazyWriter sends a 200 with the first write, so that a backup that
// fails before writing anything can still answer with an error.
type lazyWriter struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyWriter) start() {
	l.started = true
	l.w.Header().Set("Content-Type", "application/octet-stream")
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.start()
	}
	return l.w.Write(p)
}

func (h *handler) recreate(w http.ResponseWriter, r *http.Request) error {
	var req RecreateRequest
	if err := httpjson.Decode(w, r, maxBody, &req); err != nil {
		return err
	}
	res, err := h.p.Recreate(r.Context(), r.PathValue("id"), &req)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, res)
	return nil
}

func (h *handler) restore(w http.ResponseWriter, r *http.Request) error {
	streaming(w)
	res, err := h.p.Restore(r.Context(), r.PathValue("id"), r.Body)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, res)
	return nil
}

// DecodeRequest reads a provisioning request: one JSON object of at most
// 64 KiB with no field but "config", which must be an object with no
// field (or null, or absent). Errors are *httpjson.Error values.
func DecodeRequest(w http.ResponseWriter, r *http.Request) (*Request, error) {
	var req Request
	if err := httpjson.Decode(w, r, maxBody, &req); err != nil {
		return nil, err
	}
	cfg := bytes.TrimSpace(req.Config)
	if len(cfg) == 0 || bytes.Equal(cfg, []byte("null")) {
		return &req, nil
	}
	if cfg[0] != '{' {
		return nil, httpjson.ValidationError("config", "must be an object")
	}
	dec := json.NewDecoder(bytes.NewReader(cfg))
	dec.DisallowUnknownFields()
	var rc ResourceConfig
	if err := dec.Decode(&rc); err != nil {
		return nil, httpjson.ValidationError("config", "a redis resource takes no settings: %v", err)
	}
	return &req, nil
}

// apiError is the one mapping of the provider's errors to the API's.
func apiError(err error) *httpjson.Error {
	var e *httpjson.Error
	switch {
	case errors.Is(err, ErrNotFound):
		return httpjson.NotFound("%v", err)
	case errors.Is(err, ErrConflict):
		return httpjson.Errorf(httpjson.CodeConflict, "%v", err)
	case errors.Is(err, ErrBadDump):
		return httpjson.Errorf(httpjson.CodeValidation, "%v", err)
	case errors.Is(err, ErrNoImage), errors.Is(err, ErrController), errors.Is(err, ErrServer):
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: err.Error(), Retry: true}
	case errors.Is(err, context.DeadlineExceeded):
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: "timed out", Retry: true}
	case errors.As(err, &e):
		// A request the API refused itself (decoding).
		return e
	}
	return &httpjson.Error{Code: httpjson.CodeUnknown, Message: "internal error"}
}
