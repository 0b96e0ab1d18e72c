package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// buildImage is POST /host/images/build (see package host's build.go).
// Errors before the build's first line of output (a bad request, a busy
// host, an image the Dockerfile names that the host lacks) are answered
// as API errors with their status; once a line has gone the answer is a
// stream of host.BuildEvent that ends with the image's id or an error.
// The context is read whole before anything is written, as HTTP/1.1
// handlers must; a client that goes away cancels the build.
func (a *api) buildImage(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	q := r.URL.Query()
	req := daemon.BuildRequest{App: q.Get("app"), Context: http.MaxBytesReader(w, r.Body, host.MaxBuildContext)}
	if v := q.Get("memory"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			a.fail(w, r, httpjson.ValidationError("memory", "want a number of bytes, not %q", v))
			return
		}
		req.Memory = n
	}
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			a.fail(w, r, httpjson.ValidationError("timeout", "want a duration (30m), not %q", v))
			return
		}
		req.Timeout = d
	}
	out := &buildStream{w: w}
	id, err := a.d.BuildImage(r.Context(), req, out.line)
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		err = httpjson.Errorf(httpjson.CodeRequestTooLarge, "a build context may be at most %d bytes", host.MaxBuildContext)
	}
	var apiErr *httpjson.Error
	switch {
	case err != nil && !out.started && errors.As(err, &apiErr):
		a.fail(w, r, err)
	case err != nil:
		if !errors.Is(err, daemon.ErrBuildFailed) && r.Context().Err() == nil {
			a.log.Error("image build", "app", req.App, "err", err)
		}
		// The client says the build failed; the event gives why.
		msg := strings.TrimPrefix(err.Error(), daemon.ErrBuildFailed.Error()+": ")
		_ = out.send(host.BuildEvent{Error: msg})
	default:
		_ = out.send(host.BuildEvent{ImageID: id})
	}
}

// buildStream writes a build's events, its header with the first.
type buildStream struct {
	w       http.ResponseWriter
	started bool
}

func (s *buildStream) line(l string) error { return s.send(host.BuildEvent{Line: l}) }

func (s *buildStream) send(ev host.BuildEvent) error {
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", "application/x-ndjson")
		s.w.WriteHeader(http.StatusOK)
	}
	if err := json.NewEncoder(s.w).Encode(ev); err != nil {
		return err
	}
	return http.NewResponseController(s.w).Flush()
}

// builtImageArchive is GET /host/images/:id/archive: `docker save` of an
// image this host built (any other is not_found), after which the host
// drops its build tag. A save that fails once the archive has begun
// aborts the connection, so that the client sees a cut stream, not a
// shorter archive.
func (a *api) builtImageArchive(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	started := false
	err := a.d.SaveBuiltImage(r.Context(), ps.ByName("id"), func() {
		started = true
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
	}, w)
	switch {
	case err == nil:
	case !started:
		a.fail(w, r, err)
	default:
		if r.Context().Err() == nil {
			a.log.Error("save built image", "image", ps.ByName("id"), "err", err)
		}
		panic(http.ErrAbortHandler)
	}
}
