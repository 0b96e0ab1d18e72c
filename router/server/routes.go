package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/router"
)

// followRoutes keeps the route table in step with the route source until
// ctx ends, starting over (watch, then list) whenever the source fails.
func (r *Router) followRoutes(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		err := r.syncRoutes(ctx)
		if ctx.Err() != nil {
			return
		}
		r.logger.Warn("follow routes", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// syncRoutes subscribes to changes before listing, so that a change made
// between the two is seen, then applies every change that follows on top of
// the list. Changes the list already holds may come again, which is
// harmless: create and update replace the listed route with the version the
// event carries, and a delete of a route the list no longer has does
// nothing. Events come in commit order, so once the stream has passed the
// moment of the list the set is exact.
func (r *Router) syncRoutes(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := r.routes.WatchRoutes(ctx)
	if err != nil {
		return fmt.Errorf("watch routes: %w", err)
	}
	list, err := r.routes.Routes(ctx)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	set := make(map[string]*controller.Route, len(list))
	for _, rt := range list {
		set[rt.ID] = rt
	}
	r.applyRoutes(set)
	if !r.synced.Load() {
		r.awaitBackends(ctx)
		r.synced.Store(true)
		close(r.firstSync)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-events:
			if !ok {
				return errors.New("route stream ended")
			}
			applyEvent(set, ev)
			// Apply whatever else is already queued in one rebuild.
		drain:
			for {
				select {
				case ev, ok := <-events:
					if !ok {
						break drain
					}
					applyEvent(set, ev)
				default:
					break drain
				}
			}
			r.applyRoutes(set)
		}
	}
}

// awaitBackends waits until the pool of every route in the table has its
// first set of backends, for at most Config.SyncTimeout. A router that
// served as soon as it knew the routes would answer "no backends" to the
// requests of the moment its watches take to answer.
func (r *Router) awaitBackends(ctx context.Context) {
	timer := time.NewTimer(r.cfg.SyncTimeout)
	defer timer.Stop()
	for _, e := range r.table.Load().all {
		select {
		case <-e.pool.ready:
		case <-timer.C:
			r.logger.Warn("serving before every service's backends are known", "waited", r.cfg.SyncTimeout, "service", e.route.Service)
			return
		case <-ctx.Done():
			return
		}
	}
}

func applyEvent(set map[string]*controller.Route, ev router.RouteEvent) {
	if ev.Route == nil || ev.Route.ID == "" {
		return
	}
	switch ev.Op {
	case controller.OpDelete:
		delete(set, ev.Route.ID)
	default:
		set[ev.Route.ID] = ev.Route
	}
}

// applyRoutes builds a table from the routes and swaps it in. Entries of
// unchanged routes are kept (with their pools and metrics); pools and metric
// series nobody uses any more are released after the swap. Only the route
// follower calls it.
func (r *Router) applyRoutes(set map[string]*controller.Route) {
	old := r.table.Load()
	oldByID := map[string]*routeEntry{}
	for _, e := range old.all {
		oldByID[e.route.ID] = e
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)

	t := newTable()
	kept := map[*routeEntry]bool{}
	taken := map[string]string{} // match key → route id, to report conflicts
	for _, id := range ids {
		rt := set[id]
		key, err := validateRoute(rt)
		if err != nil {
			r.logger.Warn("ignoring invalid route", "route", rt.ID, "app", rt.AppID, "err", err)
			continue
		}
		if other, dup := taken[key]; dup {
			r.logger.Warn("ignoring route that duplicates another", "route", rt.ID, "app", rt.AppID, "other", other, "match", key)
			continue
		}
		taken[key] = rt.ID
		var cert *tls.Certificate
		if rt.Certificate != nil && rt.Type == controller.RouteTypeHTTP {
			c, err := tls.X509KeyPair([]byte(rt.Certificate.Cert), []byte(rt.Certificate.Key))
			if err != nil {
				r.logger.Warn("route certificate unusable, serving the default one", "route", rt.ID, "domain", rt.Domain, "err", err)
			} else {
				cert = &c
			}
		}
		e := oldByID[id]
		if e != nil && sameRoute(e.route, rt) {
			kept[e] = true
		} else {
			e = r.newEntry(rt)
		}
		t.add(e, cert)
	}
	t.sort()
	r.table.Store(t)

	newLabels := map[string]bool{}
	for _, e := range t.all {
		newLabels[strings.Join(routeLabels(e), "\x00")] = true
	}
	for _, e := range old.all {
		if kept[e] {
			continue
		}
		r.pools.release(e.pool)
		if !newLabels[strings.Join(routeLabels(e), "\x00")] {
			r.metrics.forget(e)
		}
	}
	if r.tcp != nil {
		r.tcp.reconcile(t)
	}
	r.logger.Debug("route table updated", "routes", len(t.all))
}

func (r *Router) newEntry(rt *controller.Route) *routeEntry {
	// Requests' paths are matched resolved (see table.lookup), so the
	// route's is too.
	e := &routeEntry{route: rt, path: resolvePath(rt.Path)}
	if e.path == "" {
		e.path = "/"
	}
	e.pool = r.pools.acquire(rt.Service)
	e.metrics = r.metrics.forRoute(e)
	if rt.Sticky {
		e.stickyCookie = stickyCookieName(rt.ID)
	}
	return e
}

// validateRoute checks a route and returns what it matches on, so that two
// routes claiming the same thing can be told apart.
func validateRoute(rt *controller.Route) (string, error) {
	if rt.Service == "" {
		return "", errors.New("no service")
	}
	switch rt.Type {
	case controller.RouteTypeHTTP:
		d := asciiLower(rt.Domain)
		if d == "" || strings.ContainsAny(d, "/: ") || strings.Contains(strings.TrimPrefix(d, "*."), "*") {
			return "", fmt.Errorf("bad domain %q", rt.Domain)
		}
		p := rt.Path
		if p == "" {
			p = "/"
		}
		if !strings.HasPrefix(p, "/") {
			return "", fmt.Errorf("bad path %q: must start with /", rt.Path)
		}
		return "http " + d + resolvePath(p), nil
	case controller.RouteTypeTCP:
		if rt.Port < 1 || rt.Port > 65535 {
			return "", fmt.Errorf("bad port %d", rt.Port)
		}
		return "tcp " + strconv.Itoa(rt.Port), nil
	}
	return "", fmt.Errorf("unknown type %q", rt.Type)
}

// sameRoute reports whether two versions of a route serve the same way
// (timestamps aside), so that its entry, pool and metrics can stay.
func sameRoute(a, b *controller.Route) bool {
	x, y := *a, *b
	x.CreatedAt, x.UpdatedAt = time.Time{}, time.Time{}
	y.CreatedAt, y.UpdatedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(x, y)
}
