package server

import (
	"context"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// This file serves apps' log drains (routes.go lists the API). The log
// aggregator runs them; it reads every app's with GET /drains, which only
// the system may, since the URLs may hold receivers' tokens. For the same
// reason a person reads a system app's drains with their tokens redacted
// (controller.RedactLogDrainURL).

func (s *Server) listAllLogDrains(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if !callerOf(r.Context()).system {
		return httpjson.Errorf(httpjson.CodeForbidden, "every app's log drains are the log aggregator's to read: it needs the cluster key")
	}
	return s.writeLogDrains(w, r, "", false)
}

func (s *Server) listLogDrains(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	app, err := s.store.Apps.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	return s.writeLogDrains(w, r, app.ID, app.System && !callerOf(r.Context()).system)
}

func (s *Server) writeLogDrains(w http.ResponseWriter, r *http.Request, appID string, redact bool) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	list, next, err := s.store.LogDrains.List(r.Context(), appID, p)
	if err != nil {
		return err
	}
	if redact {
		for _, d := range list {
			d.URL = controller.RedactLogDrainURL(d.URL)
		}
	}
	if appID != "" {
		s.addDrainStats(r.Context(), list)
	}
	writePage(w, r, p, list, next)
	return nil
}

// DrainStatsReader is the optional part of an AppLogReader that tells
// what the aggregator's drains sent and dropped; logaggregator/client's
// Client has it.
type DrainStatsReader interface {
	DrainStats(ctx context.Context) ([]logaggregator.DrainStats, error)
}

// addDrainStats fills in each drain's counts from the aggregator. They are
// a courtesy: an aggregator that does not answer soon leaves them out.
func (s *Server) addDrainStats(ctx context.Context, list []*controller.LogDrain) {
	reader, ok := s.opts.Logs.(DrainStatsReader)
	if !ok || len(list) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	stats, err := reader.DrainStats(ctx)
	if err != nil {
		s.logger.Warn("drain stats from the log aggregator", "err", err)
		return
	}
	byID := make(map[string]logaggregator.DrainStats, len(stats))
	for _, st := range stats {
		byID[st.DrainID] = st
	}
	for _, d := range list {
		if st, ok := byID[d.ID]; ok {
			d.Stats = &st
		}
	}
}

func (s *Server) createLogDrain(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var req controller.NewLogDrain
	if err := s.decode(w, r, "log_drain", &req); err != nil {
		return err
	}
	if _, err := controller.ParseLogDrainURL(req.URL); err != nil {
		return httpjson.ValidationError("url", "%v", err)
	}
	d := &controller.LogDrain{AppID: ps.ByName("id"), URL: req.URL}
	if err := s.store.LogDrains.Create(r.Context(), d); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, d)
	return nil
}

func (s *Server) deleteLogDrain(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	d, err := s.store.LogDrains.Delete(r.Context(), ps.ByName("id"), ps.ByName("drain_id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, d)
	return nil
}
