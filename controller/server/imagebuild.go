package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// POST /apps/:id/images/build builds the Dockerfile of a context tar (what
// gitreceive sends for a push of a repository with a Dockerfile) on a
// host, and stores the image as an upload's (images.go):
//
//	body (at most host.MaxBuildContext) ─► ImageBuilder: the least-loaded host's
//	    POST /host/images/build ─► {"line"}… streamed to the client as they come
//	    GET  /host/images/:id/archive ─► storeImageArtifact ─► {"artifact"}
//
// Failures before the build's first line (no builder or image store, the
// hosts all busy, an image the Dockerfile names that the host lacks) are
// answered as API errors with their status; after it, the stream ends
// with {"error": {"code", "message"}} instead. A client that goes away
// cancels the build on its host.

// ImageBuilder builds images on hosts: controller/hostrunner's Runner.
type ImageBuilder interface {
	// BuildImage builds buildContext's Dockerfile for the app appID,
	// calling line with each line of output as it comes, and returns the
	// image as `docker save` writes it, which the caller closes. A build
	// that ran and failed is an *httpjson.Error (validation_error) whose
	// message says why; a host's refusal is its API error.
	BuildImage(ctx context.Context, appID string, buildContext io.Reader, line func(string)) (io.ReadCloser, error)
}

// buildImage is POST /apps/:id/images/build.
func (s *Server) buildImage(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	ctx := r.Context()
	if s.opts.Images == nil {
		return httpjson.Errorf(httpjson.CodeServiceUnavailable, "this controller has no blobstore to keep images in")
	}
	if s.opts.Builder == nil {
		return httpjson.Errorf(httpjson.CodeServiceUnavailable, "this controller has no hosts to build images on")
	}
	app, err := s.store.Apps.Get(ctx, ps.ByName("id"))
	if err != nil {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/x-tar" && mt != "application/octet-stream") {
			return httpjson.Errorf(httpjson.CodeUnsupportedMedia, "send the build context as a tar (application/x-tar), not %s", ct)
		}
	}
	tooLarge := httpjson.Errorf(httpjson.CodeRequestTooLarge, "a build context may be at most %d bytes", host.MaxBuildContext)
	if r.ContentLength > host.MaxBuildContext {
		return tooLarge
	}
	out := &ndjsonStream{w: w}
	archive, err := s.opts.Builder.BuildImage(ctx, app.ID, http.MaxBytesReader(w, r.Body, host.MaxBuildContext), func(l string) {
		_ = out.send(controller.ImageBuildEvent{Line: l})
	})
	var art *controller.Artifact
	if err == nil {
		art, err = s.storeImageArtifact(ctx, app, archive)
		archive.Close()
	}
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		err = tooLarge
	}
	switch {
	case err == nil:
		s.logger.Info("image built", "app", app.Name, "artifact", art.ID)
		return out.send(controller.ImageBuildEvent{Artifact: art})
	case !out.started:
		return err
	}
	err = apiError(err)
	var apiErr *httpjson.Error
	if !errors.As(err, &apiErr) {
		if ctx.Err() != nil {
			return nil // the client went away
		}
		s.logger.Error("image build failed", "app", app.Name, "err", err)
		apiErr = httpjson.Errorf(httpjson.CodeUnknown, "internal error")
	}
	return out.send(controller.ImageBuildEvent{Error: &controller.ImageBuildError{Code: string(apiErr.Code), Message: apiErr.Message}})
}

// ndjsonStream writes JSON lines, flushing each; the header (200,
// application/x-ndjson) goes with the first.
type ndjsonStream struct {
	w       http.ResponseWriter
	started bool
}

func (s *ndjsonStream) send(v any) error {
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", "application/x-ndjson")
		s.w.WriteHeader(http.StatusOK)
	}
	if err := json.NewEncoder(s.w).Encode(v); err != nil {
		return err
	}
	_ = http.NewResponseController(s.w).Flush()
	return nil
}
