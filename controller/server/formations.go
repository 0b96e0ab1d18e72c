package server

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func (s *Server) listAllFormations(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	list, err := s.store.Formations.List(r.Context(), "")
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, list)
	return nil
}

func (s *Server) listFormations(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	app, err := s.store.Apps.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	list, err := s.store.Formations.List(r.Context(), app.ID)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, list)
	return nil
}

func (s *Server) getFormation(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	f, err := s.store.Formations.Get(r.Context(), ps.ByName("id"), ps.ByName("release_id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, f)
	return nil
}

func (s *Server) putFormation(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var f controller.Formation
	if err := s.decode(w, r, "formation", &f); err != nil {
		return err
	}
	if f.ReleaseID != "" && f.ReleaseID != ps.ByName("release_id") {
		return httpjson.ValidationError("release", "does not match the release in the path")
	}
	appID := ps.ByName("id")
	if f.AppID != "" && f.AppID != appID {
		app, err := s.store.Apps.Get(r.Context(), appID)
		if err != nil {
			return err
		}
		if f.AppID != app.ID && f.AppID != app.Name {
			return httpjson.ValidationError("app", "does not match the app in the path")
		}
	}
	f.AppID, f.ReleaseID = appID, ps.ByName("release_id")
	put := s.store.Formations.Put
	switch r.URL.Query().Get("raise") {
	case "":
	case "true":
		put = s.store.Formations.Raise
	default:
		return httpjson.ValidationError("raise", "want true or nothing")
	}
	if err := put(r.Context(), &f); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, &f)
	return nil
}

func (s *Server) deleteFormation(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	f, err := s.store.Formations.Delete(r.Context(), ps.ByName("id"), ps.ByName("release_id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, f)
	return nil
}
