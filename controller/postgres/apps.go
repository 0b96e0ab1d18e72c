package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/random"
)

// AppRepo stores apps.
type AppRepo struct{ db *db }

const appColumns = `id::text, name, meta, strategy, coalesce(release_id::text, ''), stack, system, created_at, updated_at`

func scanApp(row pgx.Row) (*controller.App, error) {
	var a controller.App
	if err := row.Scan(&a.ID, &a.Name, &a.Meta, &a.Strategy, &a.ReleaseID, &a.Stack, &a.System, &a.CreatedAt, &a.UpdatedAt); err != nil {
		return nil, err
	}
	return &a, nil
}

// Create inserts app, filling in its id (when empty), strategy default and
// timestamps. The name must already be valid, and app.System allowed to
// whoever asked: it is stored as given and never changes. routes are
// created with it (as RouteRepo.Create would, each filled in likewise) in
// the same transaction, so that neither is left without the other: a
// route that cannot be made (its domain taken: ErrExists on "domain")
// fails the whole create.
func (r *AppRepo) Create(ctx context.Context, app *controller.App, routes ...*controller.Route) error {
	if app.ID == "" {
		app.ID = random.UUID()
	}
	if app.Strategy == "" {
		app.Strategy = controller.StrategyOneByOne
	}
	if app.Meta == nil {
		app.Meta = map[string]string{}
	}
	return r.db.inTx(ctx, func(tx pgx.Tx) error {
		created, err := scanApp(tx.QueryRow(ctx, `INSERT INTO apps (id, name, meta, strategy, stack, system) VALUES ($1, $2, $3, $4, $5, $6)
			RETURNING `+appColumns, app.ID, app.Name, app.Meta, app.Strategy, app.Stack, app.System))
		if err != nil {
			return mapError(err, "app")
		}
		*app = *created
		changes := []change{{app.ID, controller.ObjectTypeApp, app.ID, controller.OpCreate, app}}
		for _, route := range routes {
			c, err := insertRoute(ctx, tx, app, route)
			if err != nil {
				return err
			}
			changes = append(changes, c)
		}
		return emit(ctx, tx, changes...)
	})
}

// Get returns the app with the given id or name.
func (r *AppRepo) Get(ctx context.Context, idOrName string) (*controller.App, error) {
	return getApp(ctx, r.db.pool, idOrName, false)
}

// getApp looks an app up by id or name; forUpdate locks its row, which
// serialises the changes that depend on the app's state (release numbers,
// deployments, deletion).
func getApp(ctx context.Context, q querier, idOrName string, forUpdate bool) (*controller.App, error) {
	lock := ""
	if forUpdate {
		lock = " FOR UPDATE"
	}
	var row pgx.Row
	if IsUUID(idOrName) {
		row = q.QueryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE id = $1`+lock, idOrName)
	} else {
		row = q.QueryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE name = $1`+lock, idOrName)
	}
	app, err := scanApp(row)
	if err != nil {
		return nil, mapError(err, "app")
	}
	return app, nil
}

// List returns a page of apps, oldest first, and the cursor of the next
// page ("" when this is the last).
func (r *AppRepo) List(ctx context.Context, p Page) ([]*controller.App, string, error) {
	return listPage(ctx, r.db.pool, p, "apps", `SELECT `+appColumns+` FROM apps WHERE true`, nil, scanApp,
		func(a *controller.App) (time.Time, string) { return a.CreatedAt, a.ID })
}

// Update changes an app's meta, strategy and stack.
func (r *AppRepo) Update(ctx context.Context, idOrName string, u controller.AppUpdate) (*controller.App, error) {
	var app *controller.App
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		old, err := getApp(ctx, tx, idOrName, true)
		if err != nil {
			return err
		}
		meta, strategy, stack := old.Meta, old.Strategy, old.Stack
		if u.Meta != nil {
			meta = u.Meta
		}
		if u.Strategy != nil {
			strategy = *u.Strategy
		}
		if u.Stack != nil {
			stack = *u.Stack
		}
		app, err = scanApp(tx.QueryRow(ctx, `UPDATE apps SET meta = $2, strategy = $3, stack = $4, updated_at = now() WHERE id = $1
			RETURNING `+appColumns, old.ID, meta, strategy, stack))
		if err != nil {
			return mapError(err, "app")
		}
		return emit(ctx, tx, change{app.ID, controller.ObjectTypeApp, app.ID, controller.OpUpdate, app})
	})
	return app, err
}

// Delete removes an app with everything it owns: its formations (a delete
// event for each tells the scheduler to stop their jobs), routes, resources
// used by no other app, releases, jobs and deployments.
func (r *AppRepo) Delete(ctx context.Context, idOrName string) (*controller.App, error) {
	var app *controller.App
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		app, err = getApp(ctx, tx, idOrName, true)
		if err != nil {
			return err
		}
		var changes []change
		formations, err := listFormations(ctx, tx, app.ID)
		if err != nil {
			return err
		}
		for _, f := range formations {
			changes = append(changes, change{app.ID, controller.ObjectTypeFormation, app.ID + ":" + f.ReleaseID, controller.OpDelete, f})
		}
		routes, err := listRoutes(ctx, tx, app.ID)
		if err != nil {
			return err
		}
		for _, rt := range routes {
			changes = append(changes, change{app.ID, controller.ObjectTypeRoute, rt.ID, controller.OpDelete, rt})
		}
		drains, err := listLogDrains(ctx, tx, app.ID)
		if err != nil {
			return err
		}
		for _, d := range drains {
			changes = append(changes, change{app.ID, controller.ObjectTypeLogDrain, d.ID, controller.OpDelete, d})
		}
		resources, err := listResources(ctx, tx, `WHERE r.id IN (SELECT resource_id FROM app_resources WHERE app_id = $1)`, app.ID)
		if err != nil {
			return err
		}
		for _, res := range resources {
			if len(res.Apps) > 1 {
				continue // still used by another app; only the link goes (by cascade)
			}
			if _, err := tx.Exec(ctx, `DELETE FROM resources WHERE id = $1`, res.ID); err != nil {
				return fmt.Errorf("delete resource %s: %w", res.ID, err)
			}
			changes = append(changes, change{app.ID, controller.ObjectTypeResource, res.ID, controller.OpDelete, res})
		}
		// Break the apps → releases reference before the cascade removes
		// the releases.
		if _, err := tx.Exec(ctx, `UPDATE apps SET release_id = NULL WHERE id = $1`, app.ID); err != nil {
			return fmt.Errorf("delete app: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM apps WHERE id = $1`, app.ID); err != nil {
			return fmt.Errorf("delete app: %w", err)
		}
		changes = append(changes, change{app.ID, controller.ObjectTypeApp, app.ID, controller.OpDelete, app})
		return emit(ctx, tx, changes...)
	})
	return app, err
}
