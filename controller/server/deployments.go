package server

import (
	"errors"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func (s *Server) getAppRelease(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	app, err := s.store.Apps.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	if app.ReleaseID == "" {
		return httpjson.NotFound("app %s has no release", app.Name)
	}
	rel, err := s.store.Releases.Get(r.Context(), app.ReleaseID)
	if err != nil {
		return err
	}
	if rel, err = s.releaseView(r.Context()).release(r.Context(), rel); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, rel)
	return nil
}

// setAppRelease is idempotent: setting the current release again changes
// nothing and answers the app.
func (s *Server) setAppRelease(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var req controller.AppReleaseRequest
	if err := s.decode(w, r, "app_release", &req); err != nil {
		return err
	}
	app, d, err := s.store.Deployments.Deploy(r.Context(), ps.ByName("id"), req.ReleaseID)
	if errors.Is(err, postgres.ErrAlreadyDeployed) {
		app, err = s.store.Apps.Get(r.Context(), ps.ByName("id"))
	}
	if err != nil {
		return err
	}
	if d != nil {
		s.logger.Info("release set", "app.id", app.ID, "release.id", req.ReleaseID, "deployment.id", d.ID, "deployment.status", d.Status)
	}
	httpjson.Write(w, http.StatusOK, app)
	return nil
}

// patchAppRelease changes the app's current release: a new release made
// from it as the body says (controller.ReleasePatch), deployed, in one
// transaction of the store, so that it starts from whatever release is
// current by then. It answers 201 with the release and its deployment, or
// 200 with the current release when the patch changes nothing; with
// no_deploy, 201 with a new release and no deployment.
func (s *Server) patchAppRelease(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var p controller.ReleasePatch
	if err := s.decode(w, r, "release_patch", &p); err != nil {
		return err
	}
	app, err := s.store.Apps.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	if err := checkHostNetwork(app, &controller.Release{Processes: p.Processes}); err != nil {
		return err
	}
	if p.Env != nil {
		if err := checkEnvNames("env.set", p.Env.Set); err != nil {
			return err
		}
	}
	if err := checkReleaseEnv(nil, p.Processes); err != nil {
		return err
	}
	// The patch's own parts; what it keeps of the current release was
	// checked when that was made.
	probe := &controller.Release{Processes: p.Processes}
	if len(probe.Processes) == 0 {
		probe.Processes = map[string]controller.ProcessType{"probe": {}} // carries the env
	}
	if p.Env != nil {
		probe.Env = p.Env.Set
	}
	if err := checkRunnable(app.Name, probe); err != nil {
		return err
	}
	p.CreatedBy = creatorOf(r.Context())
	rel, d, err := s.store.Releases.Patch(r.Context(), app.ID, p)
	if err != nil {
		return err
	}
	out := controller.PatchedRelease{Deployment: d}
	if rel != nil {
		if out.Release, err = s.releaseView(r.Context()).release(r.Context(), rel); err != nil {
			return err
		}
	}
	status := http.StatusOK
	switch {
	case d != nil:
		status = http.StatusCreated
		s.logger.Info("release patched", "app.id", app.ID, "release.id", rel.ID, "deployment.id", d.ID, "deployment.status", d.Status)
	case p.NoDeploy:
		status = http.StatusCreated // always a new release, left for the caller to deploy
		s.logger.Info("release patched, not deployed", "app.id", app.ID, "release.id", rel.ID)
	}
	httpjson.Write(w, status, &out)
	return nil
}

// deploy fails with precondition_failed when the release is current
// already: there is nothing to deploy.
func (s *Server) deploy(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var req controller.AppReleaseRequest
	if err := s.decode(w, r, "app_release", &req); err != nil {
		return err
	}
	app, d, err := s.store.Deployments.Deploy(r.Context(), ps.ByName("id"), req.ReleaseID)
	if err != nil {
		return err
	}
	s.logger.Info("deployment created", "app.id", app.ID, "release.id", req.ReleaseID, "deployment.id", d.ID, "deployment.status", d.Status)
	httpjson.Write(w, http.StatusCreated, d)
	return nil
}

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	app, err := s.store.Apps.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	p, err := page(r)
	if err != nil {
		return err
	}
	list, next, err := s.store.Deployments.List(r.Context(), app.ID, p)
	if err != nil {
		return err
	}
	writePage(w, r, p, list, next)
	return nil
}

func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	d, err := s.store.Deployments.Get(r.Context(), ps.ByName("id"), ps.ByName("deployment_id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, d)
	return nil
}

func (s *Server) updateDeployment(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var u controller.DeploymentUpdate
	if err := s.decode(w, r, "deployment_update", &u); err != nil {
		return err
	}
	d, err := s.store.Deployments.Update(r.Context(), ps.ByName("id"), ps.ByName("deployment_id"), u)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, d)
	return nil
}
