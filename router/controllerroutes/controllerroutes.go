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
// header, and refuses a resume past events its log no longer holds (it
// deletes events older than its retention, a week by default) rather than
// skip them, so no event is lost and none comes twice, and the router
// never needs to list again after a reconnect.
//
// The event log keeps no private keys: a route event's certificate comes
// without its key. For a route with a certificate, WatchRoutes reads the
// route itself from the controller. When it cannot, it ends the stream, and
// the router starts over (watch, then list), which loses nothing; else the
// stream only ends when ctx does.
//
// It lives apart from router/server so that the proxy depends on nothing
// but its two source interfaces, as router/staticconfig and
// router/discoverdbackends do.
package controllerroutes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/router"
)

// listTimeout bounds one listing of every route, or one read of a route,
// so that a controller that stops answering makes the router retry rather
// than wait forever.
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
// what survives a dropped connection). The channel closes when ctx ends, or
// when a route's private key cannot be read, once the client's stream has
// stopped.
func (s *Source) WatchRoutes(ctx context.Context) (<-chan router.RouteEvent, error) {
	ctx, cancel := context.WithCancel(ctx)
	events, err := s.client.StreamEvents(ctx, controller.EventFilter{ObjectTypes: []string{controller.ObjectTypeRoute}})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch routes: %w", err)
	}
	ch := make(chan router.RouteEvent)
	go func() {
		defer close(ch)
		// Wait for the client's stream to stop, so that a closed channel
		// means nothing of this watch is left running; a watch that ends
		// before ctx does stops it first.
		defer func() {
			for range events {
			}
		}()
		defer cancel()
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
			if ev.Op != controller.OpDelete && rt.Certificate != nil && rt.Certificate.Key == "" {
				full, err := s.withKey(ctx, ev, rt)
				switch {
				case isNotFound(err):
					// Deleted since: its delete event follows.
					continue
				case err != nil:
					if ctx.Err() == nil {
						s.logger.Warn("cannot read a route's certificate key; starting over", "route", rt.ID, "err", err)
					}
					return
				}
				rt = full
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

// withKey reads the route an event names from the controller, for the
// private key of its certificate, which events do not carry.
func (s *Source) withKey(ctx context.Context, ev *controller.Event, rt *controller.Route) (*controller.Route, error) {
	app := rt.AppID
	if app == "" {
		app = ev.AppID
	}
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	full, err := s.client.Route(ctx, app, rt.ID)
	if err != nil {
		return nil, fmt.Errorf("read route %s: %w", rt.ID, err)
	}
	return full, nil
}

// isNotFound reports whether err is the controller's not_found.
func isNotFound(err error) bool {
	var e *httpjson.Error
	return errors.As(err, &e) && e.Code == httpjson.CodeNotFound
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
