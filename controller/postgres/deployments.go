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

// DeploymentRepo stores deployments and sets apps' current releases.
type DeploymentRepo struct{ db *db }

const deploymentColumns = `id::text, app_id::text, coalesce(old_release_id::text, ''), new_release_id::text, strategy, status, processes, error, created_at, finished_at`

func scanDeployment(row pgx.Row) (*controller.Deployment, error) {
	var d controller.Deployment
	if err := row.Scan(&d.ID, &d.AppID, &d.OldReleaseID, &d.NewReleaseID, &d.Strategy, &d.Status, &d.Processes, &d.Error,
		&d.CreatedAt, &d.FinishedAt); err != nil {
		return nil, err
	}
	return &d, nil
}

// Deploy makes releaseID the current release of an app (id or name) and
// records a deployment from the old release to it, whose processes are the
// old release's formation (web=1 on an app's first deploy when the release
// has a web process type). A deployment with no processes is complete at
// once; any other stays pending for the scheduler. A release that is
// current already is refused with ErrAlreadyDeployed.
func (r *DeploymentRepo) Deploy(ctx context.Context, appIDOrName, releaseID string) (*controller.App, *controller.Deployment, error) {
	var (
		app *controller.App
		d   *controller.Deployment
	)
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if app, err = getApp(ctx, tx, appIDOrName, true); err != nil {
			return err
		}
		var changes []change
		if app, d, changes, err = deploy(ctx, tx, app, releaseID); err != nil {
			return err
		}
		return emit(ctx, tx, changes...)
	})
	return app, d, err
}

// deploy does Deploy's work inside tx, with app's row locked, and returns
// the events to emit.
func deploy(ctx context.Context, tx pgx.Tx, app *controller.App, releaseID string) (*controller.App, *controller.Deployment, []change, error) {
	rel, err := getRelease(ctx, tx, releaseID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, nil, nil, invalid("id", "release %q does not exist", releaseID)
		}
		return nil, nil, nil, err
	}
	if rel.AppID != app.ID {
		return nil, nil, nil, invalid("id", "release %s belongs to another app", rel.ID)
	}
	if app.ReleaseID == rel.ID {
		return nil, nil, nil, ErrAlreadyDeployed
	}
	processes := map[string]int{}
	if app.ReleaseID != "" {
		err := tx.QueryRow(ctx, `SELECT processes FROM formations WHERE app_id = $1 AND release_id = $2`, app.ID, app.ReleaseID).Scan(&processes)
		if err != nil && err != pgx.ErrNoRows {
			return nil, nil, nil, mapError(err, "formation")
		}
	}
	// An app's first deploy of something runnable runs one web process, as
	// Heroku does: the app had no release, or only config (set before its
	// first push).
	if _, web := rel.Processes["web"]; web && len(processes) == 0 {
		first := app.ReleaseID == ""
		if !first {
			if err := tx.QueryRow(ctx, `SELECT artifact_id IS NULL FROM releases WHERE id = $1`, app.ReleaseID).Scan(&first); err != nil {
				return nil, nil, nil, mapError(err, "release")
			}
		}
		if first {
			processes = map[string]int{"web": 1}
		}
	}
	total := 0
	for _, n := range processes {
		total += n
	}
	status := controller.DeploymentPending
	var finished *time.Time
	if total == 0 {
		// Nothing to deploy, unless the app's previous deployment has not
		// finished: the formation it will leave is not there yet, and the
		// scheduler takes the counts when this one starts, after it.
		var busy bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deployments WHERE app_id = $1 AND status IN ($2, $3))`,
			app.ID, controller.DeploymentPending, controller.DeploymentRunning).Scan(&busy); err != nil {
			return nil, nil, nil, mapError(err, "deployment")
		}
		if !busy {
			status = controller.DeploymentComplete
			now := time.Now()
			finished = &now
		}
	}
	var oldRelease *string
	if app.ReleaseID != "" {
		oldRelease = &app.ReleaseID
	}
	d, err := scanDeployment(tx.QueryRow(ctx, `INSERT INTO deployments (id, app_id, old_release_id, new_release_id, strategy, status, processes, finished_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+deploymentColumns,
		random.UUID(), app.ID, oldRelease, rel.ID, app.Strategy, status, processes, finished))
	if err != nil {
		return nil, nil, nil, mapError(err, "deployment")
	}
	updated, err := scanApp(tx.QueryRow(ctx, `UPDATE apps SET release_id = $2, updated_at = now() WHERE id = $1 RETURNING `+appColumns, app.ID, rel.ID))
	if err != nil {
		return nil, nil, nil, mapError(err, "app")
	}
	changes := []change{
		{app.ID, controller.ObjectTypeAppRelease, app.ID, controller.OpUpdate, appRelease{app.ID, rel.ID, app.ReleaseID, d.ID}},
		{app.ID, controller.ObjectTypeDeployment, d.ID, controller.OpCreate, d},
	}
	return updated, d, changes, nil
}

// Get returns deployment id of an app (id or name).
func (r *DeploymentRepo) Get(ctx context.Context, appIDOrName, id string) (*controller.Deployment, error) {
	app, err := getApp(ctx, r.db.pool, appIDOrName, false)
	if err != nil {
		return nil, err
	}
	if !IsUUID(id) {
		return nil, mapError(pgx.ErrNoRows, "deployment")
	}
	d, err := scanDeployment(r.db.pool.QueryRow(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE app_id = $1 AND id = $2`, app.ID, id))
	return d, mapError(err, "deployment")
}

// List returns a page of an app's deployments, oldest first.
func (r *DeploymentRepo) List(ctx context.Context, appID string, p Page) ([]*controller.Deployment, string, error) {
	return listPage(ctx, r.db.pool, p, "deployments", `SELECT `+deploymentColumns+` FROM deployments WHERE app_id = $1`, []any{appID}, scanDeployment,
		func(d *controller.Deployment) (time.Time, string) { return d.CreatedAt, d.ID })
}

// Update records the scheduler's progress on a deployment. A finished
// deployment (complete or failed) does not change any more.
//
// A failed deployment gives the app back the release it came from: the
// scheduler has restored that release's formation, so the app's current
// release and formation are exactly what they were before, and the next
// deploy starts from them.
func (r *DeploymentRepo) Update(ctx context.Context, appIDOrName, id string, u controller.DeploymentUpdate) (*controller.Deployment, error) {
	var d *controller.Deployment
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		app, err := getApp(ctx, tx, appIDOrName, true)
		if err != nil {
			return err
		}
		if !IsUUID(id) {
			return mapError(pgx.ErrNoRows, "deployment")
		}
		old, err := scanDeployment(tx.QueryRow(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE app_id = $1 AND id = $2 FOR UPDATE`, app.ID, id))
		if err != nil {
			return mapError(err, "deployment")
		}
		if old.Status == controller.DeploymentComplete || old.Status == controller.DeploymentFailed {
			return &Error{Err: ErrPrecondition, Message: fmt.Sprintf("deployment %s is %s already", id, old.Status)}
		}
		finished := u.Status == controller.DeploymentComplete || u.Status == controller.DeploymentFailed
		d, err = scanDeployment(tx.QueryRow(ctx, `UPDATE deployments SET status = $2, error = $3,
			finished_at = CASE WHEN $4 THEN now() END WHERE id = $1 RETURNING `+deploymentColumns, id, u.Status, u.Error, finished))
		if err != nil {
			return mapError(err, "deployment")
		}
		changes := []change{{app.ID, controller.ObjectTypeDeployment, d.ID, controller.OpUpdate, d}}
		if d.Status == controller.DeploymentFailed && app.ReleaseID == d.NewReleaseID {
			var prev *string
			if d.OldReleaseID != "" {
				prev = &d.OldReleaseID
			}
			if _, err := tx.Exec(ctx, `UPDATE apps SET release_id = $2, updated_at = now() WHERE id = $1`, app.ID, prev); err != nil {
				return mapError(err, "app")
			}
			changes = append(changes, change{app.ID, controller.ObjectTypeAppRelease, app.ID, controller.OpUpdate,
				appRelease{app.ID, d.OldReleaseID, d.NewReleaseID, d.ID}})
		}
		return emit(ctx, tx, changes...)
	})
	return d, err
}

// appRelease is the data of an app_release event: the app's release
// changed from PrevReleaseID to ReleaseID, by deployment DeploymentID.
type appRelease struct {
	AppID         string `json:"app"`
	ReleaseID     string `json:"release"`
	PrevReleaseID string `json:"prev_release,omitempty"`
	DeploymentID  string `json:"deployment"`
}
