package postgres

import (
	"context"
	"embed"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openflynn/flynn/pkg/migrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the advisory lock key that serialises controllers
// migrating the same database at once ("flynnmig" in ASCII, truncated).
// Controllers from before pkg/migrate took the same key (as a transaction
// lock), so old and new ones starting together still take turns.
const migrationLock int64 = 0x666c796e6e6d6967

// Migrate applies the embedded migrations (migrations/NNNN_name.sql) the
// database lacks, recording each in schema_migrations; see pkg/migrate.
// Running it again, or from several controllers at once, is safe.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	return migrate.Run(ctx, pool, migrate.Options{Files: files, Table: "schema_migrations", Lock: migrationLock})
}
