package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/random"
)

// APIKeyRepo stores people's API keys: a name and the SHA-256 of the
// secret, never the secret. Events about keys carry no hash either.
type APIKeyRepo struct{ db *db }

const apiKeyColumns = `id::text, name, created_at`

func scanAPIKey(row pgx.Row) (*controller.APIKey, error) {
	var k controller.APIKey
	if err := row.Scan(&k.ID, &k.Name, &k.CreatedAt); err != nil {
		return nil, err
	}
	return &k, nil
}

// Create inserts k (its name already valid) with the hash of its secret,
// filling in its id and creation time; k.Secret is left as it is and not
// stored. A name in use is refused with ErrExists.
func (r *APIKeyRepo) Create(ctx context.Context, k *controller.APIKey, hash []byte) error {
	if k.ID == "" {
		k.ID = random.UUID()
	}
	return r.db.inTx(ctx, func(tx pgx.Tx) error {
		created, err := scanAPIKey(tx.QueryRow(ctx, `INSERT INTO api_keys (id, name, hash) VALUES ($1, $2, $3) RETURNING `+apiKeyColumns,
			k.ID, k.Name, hash))
		if err != nil {
			return mapError(err, "API key")
		}
		k.ID, k.Name, k.CreatedAt = created.ID, created.Name, created.CreatedAt
		return emit(ctx, tx, change{"", controller.ObjectTypeAPIKey, k.ID, controller.OpCreate, created})
	})
}

// Get returns a key by id or name.
func (r *APIKeyRepo) Get(ctx context.Context, idOrName string) (*controller.APIKey, error) {
	k, err := scanAPIKey(r.db.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE `+apiKeyWhere(idOrName), idOrName))
	return k, mapError(err, "API key")
}

// apiKeyWhere is the condition that finds a key by $1, its id or its name
// (names never look like UUIDs: the server refuses such names).
func apiKeyWhere(idOrName string) string {
	if IsUUID(idOrName) {
		return `id = $1`
	}
	return `name = $1`
}

// GetByHash returns the key whose secret hashes to hash, or ErrNotFound.
func (r *APIKeyRepo) GetByHash(ctx context.Context, hash []byte) (*controller.APIKey, error) {
	k, err := scanAPIKey(r.db.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = $1`, hash))
	return k, mapError(err, "API key")
}

// List returns a page of keys, oldest first.
func (r *APIKeyRepo) List(ctx context.Context, p Page) ([]*controller.APIKey, string, error) {
	return listPage(ctx, r.db.pool, p, "API keys", `SELECT `+apiKeyColumns+` FROM api_keys WHERE true`, nil, scanAPIKey,
		func(k *controller.APIKey) (time.Time, string) { return k.CreatedAt, k.ID })
}

// ErrLastAPIKey is Delete's refusal, with keepOne, to revoke the only key
// there is. It is an ErrPrecondition.
var ErrLastAPIKey = &Error{Err: ErrPrecondition, Message: "it is the last API key"}

// Delete revokes a key by id or name and returns it. With keepOne it
// refuses to revoke the last key there is (ErrLastAPIKey): a person's
// request must leave some key that lets a person in.
func (r *APIKeyRepo) Delete(ctx context.Context, idOrName string, keepOne bool) (*controller.APIKey, error) {
	var k *controller.APIKey
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		if keepOne {
			// Lock every key, so two people revoking each other's keys at
			// once cannot both see the other's as the one left.
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM api_keys FOR UPDATE) AS locked`).Scan(&n); err != nil {
				return fmt.Errorf("count API keys: %w", err)
			}
			if n <= 1 {
				if _, err := scanAPIKey(tx.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE `+apiKeyWhere(idOrName), idOrName)); err != nil {
					return mapError(err, "API key")
				}
				return ErrLastAPIKey
			}
		}
		var err error
		if k, err = scanAPIKey(tx.QueryRow(ctx, `DELETE FROM api_keys WHERE `+apiKeyWhere(idOrName)+` RETURNING `+apiKeyColumns, idOrName)); err != nil {
			return mapError(err, "API key")
		}
		return emit(ctx, tx, change{"", controller.ObjectTypeAPIKey, k.ID, controller.OpDelete, k})
	})
	return k, err
}
