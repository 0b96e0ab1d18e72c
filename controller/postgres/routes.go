package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/random"
)

// RouteRepo stores routes.
type RouteRepo struct{ db *db }

const routeColumns = `id::text, coalesce(app_id::text, ''), type, service, domain, path, sticky, certificate, port, drain_backends, no_request_log, created_at, updated_at`

func scanRoute(row pgx.Row) (*controller.Route, error) {
	var r controller.Route
	if err := row.Scan(&r.ID, &r.AppID, &r.Type, &r.Service, &r.Domain, &r.Path, &r.Sticky, &r.Certificate, &r.Port,
		&r.DrainBackends, &r.NoRequestLog, &r.CreatedAt, &r.UpdatedAt); err != nil {
		return nil, err
	}
	return &r, nil
}

// tcpPortLock is the advisory lock that serialises creating TCP routes, so
// that picking a free port and taking it cannot race ("flynntcp").
const tcpPortLock int64 = 0x666c796e6e746370

// Create inserts a route owned by route.AppID (id or name), filling in its
// id, the default path and timestamps. Two http routes may not share a
// domain and path, nor two tcp routes a port. A tcp route without a port
// gets the lowest one from controller.TCPRoutePortMin to TCPRoutePortMax
// that no route has (ErrConflict when there is none); which ports an app
// may ask for is the caller's rule.
func (r *RouteRepo) Create(ctx context.Context, route *controller.Route) error {
	return r.db.inTx(ctx, func(tx pgx.Tx) error {
		app, err := getApp(ctx, tx, route.AppID, false)
		if err != nil {
			return err
		}
		c, err := insertRoute(ctx, tx, app, route)
		if err != nil {
			return err
		}
		return emit(ctx, tx, c)
	})
}

// insertRoute does Create's work for a route of app inside tx, and returns
// the event to emit.
func insertRoute(ctx context.Context, tx pgx.Tx, app *controller.App, route *controller.Route) (change, error) {
	if route.ID == "" {
		route.ID = random.UUID()
	}
	if route.Type == controller.RouteTypeHTTP && route.Path == "" {
		route.Path = "/"
	}
	if route.Type == controller.RouteTypeTCP {
		var err error
		if route.Port, err = tcpPort(ctx, tx, route.Port); err != nil {
			return change{}, err
		}
	}
	created, err := scanRoute(tx.QueryRow(ctx, `INSERT INTO routes (id, app_id, type, service, domain, path, sticky, certificate, port, drain_backends, no_request_log)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING `+routeColumns,
		route.ID, app.ID, route.Type, route.Service, route.Domain, route.Path, route.Sticky, route.Certificate, route.Port, route.DrainBackends, route.NoRequestLog))
	if err != nil {
		return change{}, mapError(err, "route")
	}
	*route = *created
	return change{app.ID, controller.ObjectTypeRoute, route.ID, controller.OpCreate, route}, nil
}

// tcpPort takes the TCP port lock for the rest of tx and returns port, or
// when it is zero the lowest free port of the range for apps.
func tcpPort(ctx context.Context, tx pgx.Tx, port int) (int, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, tcpPortLock); err != nil {
		return 0, fmt.Errorf("lock tcp ports: %w", err)
	}
	if port != 0 {
		return port, nil
	}
	err := tx.QueryRow(ctx, `SELECT p FROM generate_series($1::int, $2::int) AS p
		WHERE NOT EXISTS (SELECT 1 FROM routes WHERE type = 'tcp' AND port = p) ORDER BY p LIMIT 1`,
		controller.TCPRoutePortMin, controller.TCPRoutePortMax).Scan(&port)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, &Error{Err: ErrConflict, Field: "port", Message: fmt.Sprintf("every port from %d to %d has a route already", controller.TCPRoutePortMin, controller.TCPRoutePortMax)}
	}
	if err != nil {
		return 0, fmt.Errorf("pick a tcp port: %w", err)
	}
	return port, nil
}

// Get returns route id of an app (id or name).
func (r *RouteRepo) Get(ctx context.Context, appIDOrName, id string) (*controller.Route, error) {
	app, err := getApp(ctx, r.db.pool, appIDOrName, false)
	if err != nil {
		return nil, err
	}
	if !IsUUID(id) {
		return nil, mapError(pgx.ErrNoRows, "route")
	}
	route, err := scanRoute(r.db.pool.QueryRow(ctx, `SELECT `+routeColumns+` FROM routes WHERE app_id = $1 AND id = $2`, app.ID, id))
	return route, mapError(err, "route")
}

// List returns a page of routes, oldest first: one app's when appID is not
// empty, else every route.
func (r *RouteRepo) List(ctx context.Context, appID string, p Page) ([]*controller.Route, string, error) {
	where, args := `WHERE true`, []any(nil)
	if appID != "" {
		where, args = `WHERE app_id = $1`, []any{appID}
	}
	return listPage(ctx, r.db.pool, p, "routes", `SELECT `+routeColumns+` FROM routes `+where, args, scanRoute,
		func(r *controller.Route) (time.Time, string) { return r.CreatedAt, r.ID })
}

func listRoutes(ctx context.Context, q querier, appID string) ([]*controller.Route, error) {
	rows, err := q.Query(ctx, `SELECT `+routeColumns+` FROM routes WHERE app_id = $1 ORDER BY created_at, id`, appID)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*controller.Route, error) { return scanRoute(row) })
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	return list, nil
}

// Update changes route id of an app (id or name) as u says and returns it,
// emitting an update event.
func (r *RouteRepo) Update(ctx context.Context, appIDOrName, id string, u controller.RouteUpdate) (*controller.Route, error) {
	var route *controller.Route
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		app, err := getApp(ctx, tx, appIDOrName, false)
		if err != nil {
			return err
		}
		if !IsUUID(id) {
			return mapError(pgx.ErrNoRows, "route")
		}
		route, err = scanRoute(tx.QueryRow(ctx, `UPDATE routes SET no_request_log = coalesce($3, no_request_log), updated_at = now()
			WHERE app_id = $1 AND id = $2 RETURNING `+routeColumns, app.ID, id, u.NoRequestLog))
		if err != nil {
			return mapError(err, "route")
		}
		return emit(ctx, tx, change{app.ID, controller.ObjectTypeRoute, route.ID, controller.OpUpdate, route})
	})
	return route, err
}

// Delete removes route id of an app (id or name) and returns it.
func (r *RouteRepo) Delete(ctx context.Context, appIDOrName, id string) (*controller.Route, error) {
	var route *controller.Route
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		app, err := getApp(ctx, tx, appIDOrName, false)
		if err != nil {
			return err
		}
		if !IsUUID(id) {
			return mapError(pgx.ErrNoRows, "route")
		}
		route, err = scanRoute(tx.QueryRow(ctx, `DELETE FROM routes WHERE app_id = $1 AND id = $2 RETURNING `+routeColumns, app.ID, id))
		if err != nil {
			return mapError(err, "route")
		}
		return emit(ctx, tx, change{app.ID, controller.ObjectTypeRoute, route.ID, controller.OpDelete, route})
	})
	return route, err
}
