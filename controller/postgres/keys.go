package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/random"
)

// KeyRepo stores SSH public keys.
type KeyRepo struct{ db *db }

const keyColumns = `id::text, key, fingerprint, comment, created_at`

func scanKey(row pgx.Row) (*controller.Key, error) {
	var k controller.Key
	if err := row.Scan(&k.ID, &k.Key, &k.Fingerprint, &k.Comment, &k.CreatedAt); err != nil {
		return nil, err
	}
	return &k, nil
}

// Create inserts a parsed key; a key whose fingerprint is known already is
// refused with ErrExists.
func (r *KeyRepo) Create(ctx context.Context, k *controller.Key) error {
	if k.ID == "" {
		k.ID = random.UUID()
	}
	return r.db.inTx(ctx, func(tx pgx.Tx) error {
		created, err := scanKey(tx.QueryRow(ctx, `INSERT INTO keys (id, key, fingerprint, comment) VALUES ($1, $2, $3, $4) RETURNING `+keyColumns,
			k.ID, k.Key, k.Fingerprint, k.Comment))
		if err != nil {
			return mapError(err, "key")
		}
		*k = *created
		return emit(ctx, tx, change{"", controller.ObjectTypeKey, k.ID, controller.OpCreate, k})
	})
}

// Get returns a key by id or fingerprint.
func (r *KeyRepo) Get(ctx context.Context, idOrFingerprint string) (*controller.Key, error) {
	var row pgx.Row
	if IsUUID(idOrFingerprint) {
		row = r.db.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM keys WHERE id = $1`, idOrFingerprint)
	} else {
		row = r.db.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM keys WHERE fingerprint = $1`, idOrFingerprint)
	}
	k, err := scanKey(row)
	return k, mapError(err, "key")
}

// List returns a page of keys, oldest first.
func (r *KeyRepo) List(ctx context.Context, p Page) ([]*controller.Key, string, error) {
	return listPage(ctx, r.db.pool, p, "keys", `SELECT `+keyColumns+` FROM keys WHERE true`, nil, scanKey,
		func(k *controller.Key) (time.Time, string) { return k.CreatedAt, k.ID })
}

// Delete removes a key by id or fingerprint and returns it.
func (r *KeyRepo) Delete(ctx context.Context, idOrFingerprint string) (*controller.Key, error) {
	var k *controller.Key
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		var row pgx.Row
		if IsUUID(idOrFingerprint) {
			row = tx.QueryRow(ctx, `DELETE FROM keys WHERE id = $1 RETURNING `+keyColumns, idOrFingerprint)
		} else {
			row = tx.QueryRow(ctx, `DELETE FROM keys WHERE fingerprint = $1 RETURNING `+keyColumns, idOrFingerprint)
		}
		var err error
		if k, err = scanKey(row); err != nil {
			return mapError(err, "key")
		}
		return emit(ctx, tx, change{"", controller.ObjectTypeKey, k.ID, controller.OpDelete, k})
	})
	return k, err
}
