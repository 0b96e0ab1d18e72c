package server

import (
	"crypto/tls"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// This file serves the routes resource (routes.go lists the API).

func (s *Server) listAllRoutes(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	return s.writeRoutes(w, r, "")
}

func (s *Server) listRoutes(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	app, err := s.store.Apps.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	return s.writeRoutes(w, r, app.ID)
}

func (s *Server) writeRoutes(w http.ResponseWriter, r *http.Request, appID string) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	list, next, err := s.store.Routes.List(r.Context(), appID, p)
	if err != nil {
		return err
	}
	writePage(w, r, p, list, next)
	return nil
}

func (s *Server) createRoute(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var route controller.Route
	if err := s.decode(w, r, "route", &route); err != nil {
		return err
	}
	app, err := s.store.Apps.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	if route.AppID != "" && route.AppID != app.ID && route.AppID != app.Name {
		return httpjson.ValidationError("app", "does not match the app in the path")
	}
	if err := checkTCPPort(app, &route); err != nil {
		return err
	}
	route.AppID = app.ID
	route.Domain = strings.ToLower(route.Domain)
	if c := route.Certificate; c != nil {
		if _, err := tls.X509KeyPair([]byte(c.Cert), []byte(c.Key)); err != nil {
			return httpjson.ValidationError("certificate", "not a PEM certificate and matching key: %v", err)
		}
	}
	if err := s.store.Routes.Create(r.Context(), &route); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, &route)
	return nil
}

func (s *Server) getRoute(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	route, err := s.store.Routes.Get(r.Context(), ps.ByName("id"), ps.ByName("route_id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, route)
	return nil
}

func (s *Server) updateRoute(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var u controller.RouteUpdate
	if err := s.decode(w, r, "route_update", &u); err != nil {
		return err
	}
	route, err := s.store.Routes.Update(r.Context(), ps.ByName("id"), ps.ByName("route_id"), u)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, route)
	return nil
}

func (s *Server) deleteRoute(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	route, err := s.store.Routes.Delete(r.Context(), ps.ByName("id"), ps.ByName("route_id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, route)
	return nil
}
