package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/random"
)

// LogDrainRepo stores apps' log drains.
type LogDrainRepo struct{ db *db }

const logDrainColumns = `id::text, app_id::text, url, created_at`

func scanLogDrain(row pgx.Row) (*controller.LogDrain, error) {
	var d controller.LogDrain
	if err := row.Scan(&d.ID, &d.AppID, &d.URL, &d.CreatedAt); err != nil {
		return nil, err
	}
	return &d, nil
}

// Create adds a drain to the app d.AppID (id or name), filling in its id
// and creation time. The URL must be valid already
// (controller.ParseLogDrainURL). An app with that URL already is refused
// with ErrExists, and one with controller.MaxLogDrainsPerApp drains with
// ErrPrecondition.
func (r *LogDrainRepo) Create(ctx context.Context, d *controller.LogDrain) error {
	if d.ID == "" {
		d.ID = random.UUID()
	}
	return r.db.inTx(ctx, func(tx pgx.Tx) error {
		// The app's row lock serialises its drains' creation, so two at
		// once cannot both pass the count.
		app, err := getApp(ctx, tx, d.AppID, true)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM log_drains WHERE app_id = $1`, app.ID).Scan(&n); err != nil {
			return fmt.Errorf("count log drains: %w", err)
		}
		if n >= controller.MaxLogDrainsPerApp {
			return &Error{Err: ErrPrecondition, Message: fmt.Sprintf("%s has %d log drains, the most an app may have: remove one first", app.Name, n)}
		}
		created, err := scanLogDrain(tx.QueryRow(ctx, `INSERT INTO log_drains (id, app_id, url) VALUES ($1, $2, $3) RETURNING `+logDrainColumns,
			d.ID, app.ID, d.URL))
		if err != nil {
			return mapError(err, "log drain")
		}
		*d = *created
		return emit(ctx, tx, change{app.ID, controller.ObjectTypeLogDrain, d.ID, controller.OpCreate, d})
	})
}

// List returns a page of drains, oldest first: one app's when appID is
// not empty, else every app's.
func (r *LogDrainRepo) List(ctx context.Context, appID string, p Page) ([]*controller.LogDrain, string, error) {
	where, args := `WHERE true`, []any(nil)
	if appID != "" {
		where, args = `WHERE app_id = $1`, []any{appID}
	}
	return listPage(ctx, r.db.pool, p, "log drains", `SELECT `+logDrainColumns+` FROM log_drains `+where, args, scanLogDrain,
		func(d *controller.LogDrain) (time.Time, string) { return d.CreatedAt, d.ID })
}

// listLogDrains returns every drain of an app.
func listLogDrains(ctx context.Context, q querier, appID string) ([]*controller.LogDrain, error) {
	rows, err := q.Query(ctx, `SELECT `+logDrainColumns+` FROM log_drains WHERE app_id = $1 ORDER BY created_at, id`, appID)
	if err != nil {
		return nil, fmt.Errorf("list log drains: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*controller.LogDrain, error) { return scanLogDrain(row) })
	if err != nil {
		return nil, fmt.Errorf("list log drains: %w", err)
	}
	return list, nil
}

// Delete removes drain id of an app (id or name) and returns it.
func (r *LogDrainRepo) Delete(ctx context.Context, appIDOrName, id string) (*controller.LogDrain, error) {
	var d *controller.LogDrain
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		app, err := getApp(ctx, tx, appIDOrName, false)
		if err != nil {
			return err
		}
		if !IsUUID(id) {
			return notFound("log drain")
		}
		if d, err = scanLogDrain(tx.QueryRow(ctx, `DELETE FROM log_drains WHERE app_id = $1 AND id = $2 RETURNING `+logDrainColumns, app.ID, id)); err != nil {
			return mapError(err, "log drain")
		}
		return emit(ctx, tx, change{app.ID, controller.ObjectTypeLogDrain, d.ID, controller.OpDelete, d})
	})
	return d, err
}
