package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/random"
)

// ProviderRepo stores resource providers.
type ProviderRepo struct{ db *db }

const providerColumns = `id::text, name, url, created_at`

func scanProvider(row pgx.Row) (*controller.Provider, error) {
	var p controller.Provider
	if err := row.Scan(&p.ID, &p.Name, &p.URL, &p.CreatedAt); err != nil {
		return nil, err
	}
	return &p, nil
}

// Create inserts a provider; names are unique.
func (r *ProviderRepo) Create(ctx context.Context, p *controller.Provider) error {
	if p.ID == "" {
		p.ID = random.UUID()
	}
	return r.db.inTx(ctx, func(tx pgx.Tx) error {
		created, err := scanProvider(tx.QueryRow(ctx, `INSERT INTO providers (id, name, url) VALUES ($1, $2, $3) RETURNING `+providerColumns, p.ID, p.Name, p.URL))
		if err != nil {
			return mapError(err, "provider")
		}
		*p = *created
		return emit(ctx, tx, change{"", controller.ObjectTypeProvider, p.ID, controller.OpCreate, p})
	})
}

// Get returns a provider by id or name.
func (r *ProviderRepo) Get(ctx context.Context, idOrName string) (*controller.Provider, error) {
	var row pgx.Row
	if IsUUID(idOrName) {
		row = r.db.pool.QueryRow(ctx, `SELECT `+providerColumns+` FROM providers WHERE id = $1`, idOrName)
	} else {
		row = r.db.pool.QueryRow(ctx, `SELECT `+providerColumns+` FROM providers WHERE name = $1`, idOrName)
	}
	p, err := scanProvider(row)
	return p, mapError(err, "provider")
}

// List returns a page of providers, oldest first.
func (r *ProviderRepo) List(ctx context.Context, p Page) ([]*controller.Provider, string, error) {
	return listPage(ctx, r.db.pool, p, "providers", `SELECT `+providerColumns+` FROM providers WHERE true`, nil, scanProvider,
		func(p *controller.Provider) (time.Time, string) { return p.CreatedAt, p.ID })
}

// ResourceRepo stores provisioned resources and their links to apps.
type ResourceRepo struct{ db *db }

const resourceSelect = `SELECT r.id::text, r.provider_id::text, r.external_id, r.env,
	coalesce((SELECT array_agg(app_id::text ORDER BY app_id) FROM app_resources WHERE resource_id = r.id), '{}'), r.created_at
	FROM resources r `

func scanResource(row pgx.Row) (*controller.Resource, error) {
	var r controller.Resource
	if err := row.Scan(&r.ID, &r.ProviderID, &r.ExternalID, &r.Env, &r.Apps, &r.CreatedAt); err != nil {
		return nil, err
	}
	return &r, nil
}

func listResources(ctx context.Context, q querier, where string, args ...any) ([]*controller.Resource, error) {
	rows, err := q.Query(ctx, resourceSelect+where+` ORDER BY r.created_at, r.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list resources: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*controller.Resource, error) { return scanResource(row) })
	if err != nil {
		return nil, fmt.Errorf("list resources: %w", err)
	}
	return list, nil
}

// Create stores a resource a provider has provisioned and attaches it to
// apps (ids or names). Each app that has a current release gets a new
// release with the resource's env merged into it (unless it has that env
// already), deployed at once, as a ReleaseRepo.Patch does; it is all one
// transaction, so either every app gets the resource or none does.
// It returns the deployments made.
func (r *ResourceRepo) Create(ctx context.Context, res *controller.Resource, apps []string) ([]*controller.Deployment, error) {
	if res.ID == "" {
		res.ID = random.UUID()
	}
	var deployments []*controller.Deployment
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		env := res.Env
		if env == nil {
			env = map[string]string{}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO resources (id, provider_id, external_id, env) VALUES ($1, $2, $3, $4)`,
			res.ID, res.ProviderID, res.ExternalID, env); err != nil {
			return mapError(err, "resource")
		}
		var changes []change
		for _, idOrName := range apps {
			app, err := getApp(ctx, tx, idOrName, true)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO app_resources (app_id, resource_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, app.ID, res.ID); err != nil {
				return mapError(err, "resource")
			}
			// The same change as PATCH /apps/:id/release, under the
			// same lock: a concurrent env change is kept. An app not yet
			// pushed gets a release of config alone, as `flynn env set`
			// gives it, which its first build starts from.
			_, d, patchChanges, err := patchRelease(ctx, tx, app, controller.ReleasePatch{Env: &controller.EnvPatch{Set: res.Env}})
			if err != nil {
				return err
			}
			if d != nil {
				deployments = append(deployments, d)
			}
			changes = append(changes, patchChanges...)
		}
		created, err := scanResource(tx.QueryRow(ctx, resourceSelect+`WHERE r.id = $1`, res.ID))
		if err != nil {
			return mapError(err, "resource")
		}
		*res = *created
		appID := ""
		if len(res.Apps) == 1 {
			appID = res.Apps[0]
		}
		changes = append([]change{{appID, controller.ObjectTypeResource, res.ID, controller.OpCreate, res}}, changes...)
		return emit(ctx, tx, changes...)
	})
	return deployments, err
}

// Get returns resource id of a provider.
func (r *ResourceRepo) Get(ctx context.Context, providerID, id string) (*controller.Resource, error) {
	if !IsUUID(id) || !IsUUID(providerID) {
		return nil, mapError(pgx.ErrNoRows, "resource")
	}
	res, err := scanResource(r.db.pool.QueryRow(ctx, resourceSelect+`WHERE r.provider_id = $1 AND r.id = $2`, providerID, id))
	return res, mapError(err, "resource")
}

// ListByProvider returns a provider's resources.
func (r *ResourceRepo) ListByProvider(ctx context.Context, providerID string) ([]*controller.Resource, error) {
	return listResources(ctx, r.db.pool, `WHERE r.provider_id = $1`, providerID)
}

// ListByApp returns the resources attached to an app.
func (r *ResourceRepo) ListByApp(ctx context.Context, appID string) ([]*controller.Resource, error) {
	return listResources(ctx, r.db.pool, `WHERE r.id IN (SELECT resource_id FROM app_resources WHERE app_id = $1)`, appID)
}

// Delete removes resource id of a provider, and gives each app it was
// attached to a new release without the resource's env, deployed, as a
// ReleaseRepo.Patch that unsets those variables does; a variable whose
// value an app has changed since is the app's own and stays. It is all one
// transaction. It returns the resource as it was and the deployments made.
// The caller deprovisions it at the provider.
func (r *ResourceRepo) Delete(ctx context.Context, providerID, id string) (*controller.Resource, []*controller.Deployment, error) {
	if !IsUUID(id) || !IsUUID(providerID) {
		return nil, nil, mapError(pgx.ErrNoRows, "resource")
	}
	var (
		res         *controller.Resource
		deployments []*controller.Deployment
	)
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		// The apps are locked before the resource, in the order in which
		// deleting an app locks them, so that the two never deadlock.
		before, err := scanResource(tx.QueryRow(ctx, resourceSelect+`WHERE r.provider_id = $1 AND r.id = $2`, providerID, id))
		if err != nil {
			return mapError(err, "resource")
		}
		apps := map[string]*controller.App{}
		for _, appID := range before.Apps { // sorted by id
			app, err := getApp(ctx, tx, appID, true)
			if errors.Is(err, ErrNotFound) {
				continue // deleted meanwhile
			} else if err != nil {
				return err
			}
			apps[app.ID] = app
		}
		if res, err = scanResource(tx.QueryRow(ctx, resourceSelect+`WHERE r.provider_id = $1 AND r.id = $2 FOR UPDATE OF r`, providerID, id)); err != nil {
			return mapError(err, "resource")
		}
		if _, err := tx.Exec(ctx, `DELETE FROM resources WHERE id = $1`, res.ID); err != nil {
			return fmt.Errorf("delete resource %s: %w", res.ID, err)
		}
		appID := ""
		if len(res.Apps) == 1 {
			appID = res.Apps[0]
		}
		changes := []change{{appID, controller.ObjectTypeResource, res.ID, controller.OpDelete, res}}
		for _, id := range res.Apps {
			app := apps[id]
			if app == nil || app.ReleaseID == "" {
				continue // only the link, gone by cascade
			}
			current, err := getRelease(ctx, tx, app.ReleaseID)
			if err != nil {
				return err
			}
			var unset []string
			for _, k := range slices.Sorted(maps.Keys(res.Env)) {
				if v, ok := current.Env[k]; ok && v == res.Env[k] {
					unset = append(unset, k)
				}
			}
			if len(unset) == 0 {
				continue
			}
			_, d, patchChanges, err := patchRelease(ctx, tx, app, controller.ReleasePatch{Env: &controller.EnvPatch{Unset: unset}})
			if err != nil {
				return err
			}
			if d != nil {
				deployments = append(deployments, d)
			}
			changes = append(changes, patchChanges...)
		}
		return emit(ctx, tx, changes...)
	})
	if err != nil {
		return nil, nil, err
	}
	return res, deployments, nil
}
