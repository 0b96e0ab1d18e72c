// Package controllerroutes is the router's route source in a cluster: a thin
// adapter from the controller's Go client (controller/client) to the
// router's RouteSource (router/server). Routes lists every route (all pages)
// and WatchRoutes turns the client's route event stream into RouteEvents;
// the router opens the stream first and lists second, so nothing falls in
// between.
//
// What the stream guarantees, as client.StreamEvents provides it: the first
// connection is open before WatchRoutes returns; after a drop the client
// reconnects by itself (backing off up to 5s) and resumes after the last
// event it delivered, or, before any event, after the id the controller
// named in its Flynn-Stream-Start header. Every controller sends that
// header and keeps its whole event log, so no event is lost and none comes
// twice, and the router never needs to list again after a reconnect. The
// client does not report gaps because there are none to report; the stream
// only ends when ctx does.
//
// It lives apart from router/server so that the proxy depends on nothing
// but its two source interfaces, as router/staticconfig and
// router/discoverdbackends do.
package controllerroutes

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/router"
)

// listTimeout bounds one listing of every route, so that a controller that
// stops answering mid-list makes the router retry rather than wait forever.
const listTimeout = 30 * time.Second

// Source follows a controller's routes. Use New.
type Source struct {
	client *client.Client
	logger *slog.Logger
}

// New returns a Source that follows the routes of the controller c talks to.
func New(c *client.Client, logger *slog.Logger) *Source {
	return &Source{client: c, logger: logger.With("part", "controllerroutes")}
}

// Routes returns every route of every app.
func (s *Source) Routes(ctx context.Context) ([]*controller.Route, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	list, err := s.client.Routes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	return list, nil
}

// WatchRoutes streams route changes from now on (see the package doc for
// what survives a dropped connection). The channel closes when ctx ends,
// once the client's stream has stopped.
func (s *Source) WatchRoutes(ctx context.Context) (<-chan router.RouteEvent, error) {
	events, err := s.client.StreamEvents(ctx, controller.EventFilter{ObjectTypes: []string{controller.ObjectTypeRoute}})
	if err != nil {
		return nil, fmt.Errorf("watch routes: %w", err)
	}
	ch := make(chan router.RouteEvent)
	go func() {
		defer close(ch)
		// Wait for the client's stream to stop, so that a closed channel
		// means nothing of this watch is left running.
		defer func() {
			for range events {
			}
		}()
		var last int64
		for ev := range events {
			// The client delivers each event once, in order. Skipping ids
			// already passed makes a repeat harmless all the same: a
			// replayed create would bring back a route deleted since.
			if ev.ID <= last || ev.ObjectType != controller.ObjectTypeRoute {
				continue
			}
			last = ev.ID
			rt, err := route(ev)
			if err != nil {
				s.logger.Warn("skipping undecodable route event", "id", ev.ID, "op", ev.Op, "route", ev.ObjectID, "err", err)
				continue
			}
			select {
			case ch <- router.RouteEvent{ID: ev.ID, Op: ev.Op, Route: rt}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// route decodes the route an event carries. A delete whose event carries no
// route still names it, which is all a delete needs.
func route(ev *controller.Event) (*controller.Route, error) {
	var rt controller.Route
	if len(ev.Data) > 0 && string(ev.Data) != "null" {
		if err := json.Unmarshal(ev.Data, &rt); err != nil {
			return nil, err
		}
	}
	if rt.ID == "" {
		rt.ID = ev.ObjectID
	}
	return &rt, nil
}
