package pg

import (
	"context"
	"embed"
	"io/fs"

	"github.com/openflynn/flynn/pkg/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrateLock is the advisory lock key that serialises Migrate across
// blobstore processes sharing a database: lockClass in the high half, so
// it reads as the blobstore's. Being a single bigint key, it cannot collide
// with the (lockClass, hashtext(path)) pairs that guard uploads.
const migrateLock = int64(lockClass) << 32

// Migrate brings the schema up to date: it applies the embedded migrations
// (migrations/NNN_name.sql) not yet recorded in blobstore_migrations; see
// pkg/migrate. Several blobstores starting at once is safe.
func (s *Store) Migrate(ctx context.Context) error {
	files, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	return migrate.Run(ctx, s.pool, migrate.Options{Files: files, Table: "blobstore_migrations", Lock: migrateLock})
}
