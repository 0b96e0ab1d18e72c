package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func (s *Server) listArtifacts(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	list, next, err := s.store.Artifacts.List(r.Context(), p)
	if err != nil {
		return err
	}
	writePage(w, r, p, list, next)
	return nil
}

func (s *Server) createArtifact(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var a controller.Artifact
	if err := s.decode(w, r, "artifact", &a); err != nil {
		return err
	}
	// Hosts fetch a URL artifact (an uploaded image: POST
	// /apps/:id/images makes those, with a signed blobstore URL) from their
	// own network; one named here could point them anywhere.
	if strings.Contains(a.URI, "://") {
		return httpjson.ValidationError("uri", "must be a Docker image reference, not a URL (upload an image with POST /apps/:id/images: flynn docker push)")
	}
	if err := s.store.Artifacts.Create(r.Context(), &a); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, &a)
	return nil
}

func (s *Server) getArtifact(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	a, err := s.store.Artifacts.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, a)
	return nil
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	return s.writeReleases(w, r, "")
}

func (s *Server) listAppReleases(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	app, err := s.store.Apps.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	return s.writeReleases(w, r, app.ID)
}

func (s *Server) writeReleases(w http.ResponseWriter, r *http.Request, appID string) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	list, next, err := s.store.Releases.List(r.Context(), appID, p)
	if err != nil {
		return err
	}
	if err := s.releaseView(r.Context()).releases(r.Context(), list); err != nil {
		return err
	}
	writePage(w, r, p, list, next)
	return nil
}

func (s *Server) createRelease(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var rel controller.Release
	if err := s.decode(w, r, "release", &rel); err != nil {
		return err
	}
	if rel.AppID == "" {
		return httpjson.ValidationError("app", "is required")
	}
	app, err := s.store.Apps.Get(r.Context(), rel.AppID)
	if errors.Is(err, postgres.ErrNotFound) {
		// The app named in the body is missing: the body is wrong, not the URL.
		return httpjson.ValidationError("app", "app %q does not exist", rel.AppID)
	}
	if err != nil {
		return err
	}
	if err := mayChange(r.Context(), app); err != nil {
		return err
	}
	return s.saveRelease(w, r, app, &rel)
}

func (s *Server) createAppRelease(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var rel controller.Release
	if err := s.decode(w, r, "release", &rel); err != nil {
		return err
	}
	app, err := s.store.Apps.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	if rel.AppID != "" && rel.AppID != app.ID && rel.AppID != app.Name {
		return httpjson.ValidationError("app", "does not match the app in the path")
	}
	rel.AppID = app.ID
	return s.saveRelease(w, r, app, &rel)
}

// saveRelease stores rel, a release of app that the caller may change.
func (s *Server) saveRelease(w http.ResponseWriter, r *http.Request, app *controller.App, rel *controller.Release) error {
	if err := checkHostNetwork(app, rel); err != nil {
		return err
	}
	if err := checkReleaseEnv(rel.Env, rel.Processes); err != nil {
		return err
	}
	if err := checkRunnable(app.Name, rel); err != nil {
		return err
	}
	rel.AppID = app.ID
	rel.Version = 0 // assigned by the store
	rel.Meta = controller.WithCreator(rel.Meta, creatorOf(r.Context()))
	err := s.store.Releases.Create(r.Context(), rel)
	if errors.Is(err, postgres.ErrNotFound) {
		// The app named in the body is missing: the body is wrong, not the URL.
		return httpjson.ValidationError("app", "app %q does not exist", rel.AppID)
	}
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, rel)
	return nil
}

func (s *Server) getRelease(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	rel, err := s.store.Releases.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	if rel, err = s.releaseView(r.Context()).release(r.Context(), rel); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, rel)
	return nil
}
