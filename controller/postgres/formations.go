package postgres

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/controller"
)

// FormationRepo stores formations, keyed by app and release.
type FormationRepo struct{ db *db }

const formationColumns = `app_id::text, release_id::text, processes, created_at, updated_at`

func scanFormation(row pgx.Row) (*controller.Formation, error) {
	var f controller.Formation
	if err := row.Scan(&f.AppID, &f.ReleaseID, &f.Processes, &f.CreatedAt, &f.UpdatedAt); err != nil {
		return nil, err
	}
	return &f, nil
}

func formationID(f *controller.Formation) string { return f.AppID + ":" + f.ReleaseID }

// Put creates or replaces the formation of f.AppID (id or name) and
// f.ReleaseID. The release must belong to the app and define every process
// type named.
func (r *FormationRepo) Put(ctx context.Context, f *controller.Formation) error {
	return r.put(ctx, f, false)
}

// Raise is Put for a deployment's step: each count becomes the larger of
// f's and the stored one, in one statement, so that a count someone
// raised meanwhile (`flynn scale` during a deploy) is never lowered.
func (r *FormationRepo) Raise(ctx context.Context, f *controller.Formation) error {
	return r.put(ctx, f, true)
}

// raiseProcesses merges the stored processes with EXCLUDED's, taking the
// larger count of each type.
const raiseProcesses = `(SELECT coalesce(jsonb_object_agg(k, greatest(coalesce((formations.processes->>k)::int, 0), coalesce((EXCLUDED.processes->>k)::int, 0))), '{}'::jsonb)
	FROM (SELECT jsonb_object_keys(formations.processes) UNION SELECT jsonb_object_keys(EXCLUDED.processes)) AS types(k))`

func (r *FormationRepo) put(ctx context.Context, f *controller.Formation, raise bool) error {
	return r.db.inTx(ctx, func(tx pgx.Tx) error {
		app, err := getApp(ctx, tx, f.AppID, false)
		if err != nil {
			return err
		}
		rel, err := getRelease(ctx, tx, f.ReleaseID)
		if err != nil {
			return err
		}
		if rel.AppID != app.ID {
			return invalid("release", "release %s belongs to another app", rel.ID)
		}
		names := make([]string, 0, len(f.Processes))
		for name := range f.Processes {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if _, ok := rel.Processes[name]; !ok {
				return invalid("processes."+name, "release %s has no process type %q", controller.ReleaseVersion(rel.Version), name)
			}
			if f.Processes[name] < 0 {
				return invalid("processes."+name, "count must not be negative")
			}
		}
		processes := f.Processes
		if processes == nil {
			processes = map[string]int{}
		}
		var op string
		var inserted bool
		set := "EXCLUDED.processes"
		if raise {
			set = raiseProcesses
		}
		saved, err := scanFormationInserted(tx.QueryRow(ctx, `INSERT INTO formations (app_id, release_id, processes) VALUES ($1, $2, $3)
			ON CONFLICT (app_id, release_id) DO UPDATE SET processes = `+set+`, updated_at = now()
			RETURNING `+formationColumns+`, xmax = 0`, app.ID, rel.ID, processes), &inserted)
		if err != nil {
			return mapError(err, "formation")
		}
		op = controller.OpUpdate
		if inserted {
			op = controller.OpCreate
		}
		*f = *saved
		return emit(ctx, tx, change{app.ID, controller.ObjectTypeFormation, formationID(f), op, f})
	})
}

func scanFormationInserted(row pgx.Row, inserted *bool) (*controller.Formation, error) {
	var f controller.Formation
	if err := row.Scan(&f.AppID, &f.ReleaseID, &f.Processes, &f.CreatedAt, &f.UpdatedAt, inserted); err != nil {
		return nil, err
	}
	return &f, nil
}

// Get returns the formation of an app (id or name) and release.
func (r *FormationRepo) Get(ctx context.Context, appIDOrName, releaseID string) (*controller.Formation, error) {
	app, err := getApp(ctx, r.db.pool, appIDOrName, false)
	if err != nil {
		return nil, err
	}
	if !IsUUID(releaseID) {
		return nil, mapError(pgx.ErrNoRows, "formation")
	}
	f, err := scanFormation(r.db.pool.QueryRow(ctx, `SELECT `+formationColumns+` FROM formations WHERE app_id = $1 AND release_id = $2`, app.ID, releaseID))
	return f, mapError(err, "formation")
}

// List returns an app's formations; every app's when appID is "".
func (r *FormationRepo) List(ctx context.Context, appID string) ([]*controller.Formation, error) {
	return listFormations(ctx, r.db.pool, appID)
}

func listFormations(ctx context.Context, q querier, appID string) ([]*controller.Formation, error) {
	rows, err := q.Query(ctx, `SELECT `+formationColumns+` FROM formations WHERE $1 = '' OR app_id::text = $1 ORDER BY created_at, release_id`, appID)
	if err != nil {
		return nil, fmt.Errorf("list formations: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*controller.Formation, error) { return scanFormation(row) })
	if err != nil {
		return nil, fmt.Errorf("list formations: %w", err)
	}
	return list, nil
}

// Delete removes the formation of an app (id or name) and release and
// returns it.
func (r *FormationRepo) Delete(ctx context.Context, appIDOrName, releaseID string) (*controller.Formation, error) {
	var f *controller.Formation
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		app, err := getApp(ctx, tx, appIDOrName, false)
		if err != nil {
			return err
		}
		if !IsUUID(releaseID) {
			return mapError(pgx.ErrNoRows, "formation")
		}
		f, err = scanFormation(tx.QueryRow(ctx, `DELETE FROM formations WHERE app_id = $1 AND release_id = $2 RETURNING `+formationColumns, app.ID, releaseID))
		if err != nil {
			return mapError(err, "formation")
		}
		return emit(ctx, tx, change{app.ID, controller.ObjectTypeFormation, formationID(f), controller.OpDelete, f})
	})
	return f, err
}
