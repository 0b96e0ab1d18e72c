package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/controller"
)

// JobRepo stores the jobs of apps as the scheduler reports them.
type JobRepo struct{ db *db }

const jobColumns = `id, app_id::text, release_id::text, type, host_id, state, exit_status, args, meta, started_at, ended_at, created_at, updated_at, error`

func scanJob(row pgx.Row) (*controller.Job, error) {
	var j controller.Job
	if err := row.Scan(&j.ID, &j.AppID, &j.ReleaseID, &j.Type, &j.HostID, &j.State, &j.ExitStatus, &j.Args, &j.Meta,
		&j.StartedAt, &j.EndedAt, &j.CreatedAt, &j.UpdatedAt, &j.Error); err != nil {
		return nil, err
	}
	return &j, nil
}

// Put creates or updates job j of j.AppID (id or name). The release must
// belong to the app; a job never moves to another app or release, and its
// state never moves back (an older report keeps the newer state).
func (r *JobRepo) Put(ctx context.Context, j *controller.Job) error {
	return r.db.inTx(ctx, func(tx pgx.Tx) error {
		app, err := getApp(ctx, tx, j.AppID, false)
		if err != nil {
			return err
		}
		rel, err := getRelease(ctx, tx, j.ReleaseID)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return invalid("release", "release %q does not exist", j.ReleaseID)
			}
			return err
		}
		if rel.AppID != app.ID {
			return invalid("release", "release %s belongs to another app", rel.ID)
		}
		args, meta := j.Args, j.Meta
		if args == nil {
			args = []string{}
		}
		if meta == nil {
			meta = map[string]string{}
		}
		var inserted bool
		var saved controller.Job
		err = tx.QueryRow(ctx, `INSERT INTO jobs (id, app_id, release_id, type, host_id, state, exit_status, args, meta, started_at, ended_at, error)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (id) DO UPDATE SET host_id = EXCLUDED.host_id,
				state = CASE WHEN `+stateRank("EXCLUDED.state")+` >= `+stateRank("jobs.state")+` THEN EXCLUDED.state ELSE jobs.state END,
				exit_status = coalesce(EXCLUDED.exit_status, jobs.exit_status),
				started_at = coalesce(EXCLUDED.started_at, jobs.started_at),
				ended_at = coalesce(EXCLUDED.ended_at, jobs.ended_at),
				error = CASE WHEN EXCLUDED.error = '' THEN jobs.error ELSE EXCLUDED.error END,
				meta = CASE WHEN EXCLUDED.meta = '{}'::jsonb THEN jobs.meta ELSE EXCLUDED.meta END, updated_at = now()
			WHERE jobs.app_id = EXCLUDED.app_id AND jobs.release_id = EXCLUDED.release_id
			RETURNING `+jobColumns+`, xmax = 0`,
			j.ID, app.ID, rel.ID, j.Type, j.HostID, j.State, j.ExitStatus, args, meta, j.StartedAt, j.EndedAt, j.Error).Scan(
			&saved.ID, &saved.AppID, &saved.ReleaseID, &saved.Type, &saved.HostID, &saved.State, &saved.ExitStatus, &saved.Args, &saved.Meta,
			&saved.StartedAt, &saved.EndedAt, &saved.CreatedAt, &saved.UpdatedAt, &saved.Error, &inserted)
		if err == pgx.ErrNoRows {
			return &Error{Err: ErrConflict, Field: "release", Message: "job " + j.ID + " belongs to another app or release"}
		}
		if err != nil {
			return mapError(err, "job")
		}
		*j = saved
		op := controller.OpUpdate
		if inserted {
			op = controller.OpCreate
		}
		return emit(ctx, tx, change{app.ID, controller.ObjectTypeJob, j.ID, op, j})
	})
}

// stateRank is SQL ranking a job state column by how far along its life
// it is. A job's recorded state only moves forward: reports can arrive out
// of order (the controller records a one-off job as starting after the
// scheduler has seen it up), and an older one must not undo a newer.
func stateRank(col string) string {
	return `CASE ` + col + ` WHEN 'pending' THEN 0 WHEN 'starting' THEN 1 WHEN 'up' THEN 2 WHEN 'stopping' THEN 3 ELSE 4 END`
}

// Get returns job id of an app (id or name).
func (r *JobRepo) Get(ctx context.Context, appIDOrName, id string) (*controller.Job, error) {
	app, err := getApp(ctx, r.db.pool, appIDOrName, false)
	if err != nil {
		return nil, err
	}
	j, err := scanJob(r.db.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE app_id = $1 AND id = $2`, app.ID, id))
	return j, mapError(err, "job")
}

// List returns a page of an app's jobs, oldest first; only those that have
// not ended when activeOnly.
func (r *JobRepo) List(ctx context.Context, appID string, activeOnly bool, p Page) ([]*controller.Job, string, error) {
	return listPage(ctx, r.db.pool, p, "jobs", `SELECT `+jobColumns+` FROM jobs WHERE app_id = $1
		AND (NOT $2 OR state NOT IN ('down', 'crashed', 'failed'))`, []any{appID, activeOnly}, scanJob,
		func(j *controller.Job) (time.Time, string) { return j.CreatedAt, j.ID })
}
