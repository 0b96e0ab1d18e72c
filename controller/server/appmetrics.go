package server

import (
	"context"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// RouterMetrics reads what the cluster's routers have counted of the
// requests of routes; router/routermetrics's Scraper is one.
type RouterMetrics interface {
	// AppMetrics sums the routers' counts of the routes with ids
	// routeIDs. No route ids is a reading of the routers alone.
	AppMetrics(ctx context.Context, routeIDs []string) (*controller.AppMetrics, error)
}

// appMetrics serves GET /apps/:id/metrics: the routers' counts of the
// requests of the app's HTTP routes (controller.AppMetrics), totals that a
// client turns into rates by reading twice.
func (s *Server) appMetrics(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	app, err := s.store.Apps.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	if s.opts.RouterMetrics == nil {
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: "this controller cannot reach the routers' metrics", Retry: true}
	}
	var ids []string
	p := postgres.Page{Limit: postgres.MaxPageSize}
	for {
		routes, next, err := s.store.Routes.List(r.Context(), app.ID, p)
		if err != nil {
			return err
		}
		for _, rt := range routes {
			// TCP routes count connections, not requests.
			if rt.Type != controller.RouteTypeTCP {
				ids = append(ids, rt.ID)
			}
		}
		if next == "" {
			break
		}
		p.Cursor = next
	}
	m, err := s.opts.RouterMetrics.AppMetrics(r.Context(), ids)
	if err != nil {
		s.logger.Warn("read router metrics", "app.id", app.ID, "err", err)
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: "the routers cannot be found", Retry: true}
	}
	httpjson.Write(w, http.StatusOK, m)
	return nil
}
