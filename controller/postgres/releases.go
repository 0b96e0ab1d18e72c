package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/random"
)

// ReleaseRepo stores releases. Releases are immutable: there is no update.
type ReleaseRepo struct{ db *db }

const releaseColumns = `id::text, app_id::text, version, coalesce(artifact_id::text, ''), env, processes, meta, created_at`

func scanRelease(row pgx.Row) (*controller.Release, error) {
	var r controller.Release
	if err := row.Scan(&r.ID, &r.AppID, &r.Version, &r.ArtifactID, &r.Env, &r.Processes, &r.Meta, &r.CreatedAt); err != nil {
		return nil, err
	}
	return &r, nil
}

// Create inserts a release for rel.AppID (an id or name) with the app's
// next version number, filling in id, app id, version and timestamp.
func (r *ReleaseRepo) Create(ctx context.Context, rel *controller.Release) error {
	return r.db.inTx(ctx, func(tx pgx.Tx) error {
		app, err := getApp(ctx, tx, rel.AppID, true)
		if err != nil {
			return err
		}
		rel.AppID = app.ID
		if err := createRelease(ctx, tx, rel); err != nil {
			return err
		}
		return emit(ctx, tx, change{app.ID, controller.ObjectTypeRelease, rel.ID, controller.OpCreate, rel})
	})
}

// createRelease inserts rel; the caller holds the app's row lock, which
// makes the version number safe to compute here.
func createRelease(ctx context.Context, tx pgx.Tx, rel *controller.Release) error {
	if rel.ID == "" {
		rel.ID = random.UUID()
	}
	// A config-only release (env, no artifact) has nothing to run: it keeps
	// an app's config vars before its first build.
	var artifactID *string
	if rel.ArtifactID == "" {
		if len(rel.Processes) > 0 {
			return invalid("artifact", "a release with process types needs an artifact")
		}
	} else {
		if !IsUUID(rel.ArtifactID) {
			return invalid("artifact", "artifact %q does not exist", rel.ArtifactID)
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM artifacts WHERE id = $1)`, rel.ArtifactID).Scan(&exists); err != nil {
			return fmt.Errorf("check artifact: %w", err)
		}
		if !exists {
			return invalid("artifact", "artifact %q does not exist", rel.ArtifactID)
		}
		artifactID = &rel.ArtifactID
	}
	env, processes, meta := rel.Env, rel.Processes, rel.Meta
	if env == nil {
		env = map[string]string{}
	}
	if processes == nil {
		processes = map[string]controller.ProcessType{}
	}
	if meta == nil {
		meta = map[string]string{}
	}
	created, err := scanRelease(tx.QueryRow(ctx, `INSERT INTO releases (id, app_id, version, artifact_id, env, processes, meta)
		VALUES ($1, $2, (SELECT coalesce(max(version), 0) + 1 FROM releases WHERE app_id = $2), $3, $4, $5, $6)
		RETURNING `+releaseColumns, rel.ID, rel.AppID, artifactID, env, processes, meta))
	if err != nil {
		return mapError(err, "release")
	}
	*rel = *created
	return nil
}

// Get returns a release by id.
func (r *ReleaseRepo) Get(ctx context.Context, id string) (*controller.Release, error) {
	return getRelease(ctx, r.db.pool, id)
}

func getRelease(ctx context.Context, q querier, id string) (*controller.Release, error) {
	if !IsUUID(id) {
		return nil, mapError(pgx.ErrNoRows, "release")
	}
	rel, err := scanRelease(q.QueryRow(ctx, `SELECT `+releaseColumns+` FROM releases WHERE id = $1`, id))
	return rel, mapError(err, "release")
}

// List returns a page of releases, oldest first: one app's when appID is
// not empty, else every app's.
func (r *ReleaseRepo) List(ctx context.Context, appID string, p Page) ([]*controller.Release, string, error) {
	where, args := `WHERE true`, []any(nil)
	if appID != "" {
		where, args = `WHERE app_id = $1`, []any{appID}
	}
	return listPage(ctx, r.db.pool, p, "releases", `SELECT `+releaseColumns+` FROM releases `+where, args, scanRelease,
		func(r *controller.Release) (time.Time, string) { return r.CreatedAt, r.ID })
}
