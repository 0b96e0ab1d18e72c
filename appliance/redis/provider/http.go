package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

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
//	POST   /clusters       {"config":{}} → 201 {"id": "…", "env": {"REDIS_URL": "…", …}}
//	DELETE /clusters/{id}  204; 404 when there is no such resource
//	GET    /health         200
func Handler(p *Provider, key string, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{p: p, logger: logger}
	api := http.NewServeMux()
	api.HandleFunc("POST "+Path, h.wrap(h.provision))
	api.HandleFunc("DELETE "+Path+"/{id}", h.wrap(h.deprovision))
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
	case errors.Is(err, ErrNoImage), errors.Is(err, ErrController):
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: err.Error(), Retry: true}
	case errors.Is(err, context.DeadlineExceeded):
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: "timed out", Retry: true}
	case errors.As(err, &e):
		// A request the API refused itself (decoding).
		return e
	}
	return &httpjson.Error{Code: httpjson.CodeUnknown, Message: "internal error"}
}
