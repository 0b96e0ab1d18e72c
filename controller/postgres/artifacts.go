package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/random"
)

// ArtifactRepo stores artifacts.
type ArtifactRepo struct{ db *db }

const artifactColumns = `id::text, type, uri, meta, created_at`

func scanArtifact(row pgx.Row) (*controller.Artifact, error) {
	var a controller.Artifact
	if err := row.Scan(&a.ID, &a.Type, &a.URI, &a.Meta, &a.CreatedAt); err != nil {
		return nil, err
	}
	return &a, nil
}

// Create inserts an artifact, filling in its id and timestamp.
func (r *ArtifactRepo) Create(ctx context.Context, a *controller.Artifact) error {
	if a.ID == "" {
		a.ID = random.UUID()
	}
	if a.Meta == nil {
		a.Meta = map[string]string{}
	}
	return r.db.inTx(ctx, func(tx pgx.Tx) error {
		created, err := scanArtifact(tx.QueryRow(ctx, `INSERT INTO artifacts (id, type, uri, meta) VALUES ($1, $2, $3, $4)
			RETURNING `+artifactColumns, a.ID, a.Type, a.URI, a.Meta))
		if err != nil {
			return mapError(err, "artifact")
		}
		*a = *created
		return emit(ctx, tx, change{"", controller.ObjectTypeArtifact, a.ID, controller.OpCreate, a})
	})
}

// Get returns an artifact by id.
func (r *ArtifactRepo) Get(ctx context.Context, id string) (*controller.Artifact, error) {
	if !IsUUID(id) {
		return nil, mapError(pgx.ErrNoRows, "artifact")
	}
	a, err := scanArtifact(r.db.pool.QueryRow(ctx, `SELECT `+artifactColumns+` FROM artifacts WHERE id = $1`, id))
	return a, mapError(err, "artifact")
}

// List returns a page of artifacts, oldest first, and the next cursor.
func (r *ArtifactRepo) List(ctx context.Context, p Page) ([]*controller.Artifact, string, error) {
	return listPage(ctx, r.db.pool, p, "artifacts", `SELECT `+artifactColumns+` FROM artifacts WHERE true`, nil, scanArtifact,
		func(a *controller.Artifact) (time.Time, string) { return a.CreatedAt, a.ID })
}
