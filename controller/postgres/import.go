package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/migrate"
)

// A cluster restore (appliance/postgres/backup) brings the old cluster's
// controller database back as a scratch database on this controller's
// server. Import copies from it what belongs to people, as it was: every
// app that is not a system app (the new cluster has its own platform),
// with its releases and their artifacts, formations, routes, log drains,
// resources and finished deployments, and the SSH keys and API keys this cluster does
// not have. Ids, versions and times are kept, so releases, resources and
// the apps' env (DATABASE_URL, whose role and password the restore brought
// back too) mean what they meant. Resources keep their provider by name:
// the new cluster's "postgres" provider takes over the old one's
// databases; a provider this cluster lacks is brought over.
//
// It is one transaction, which also writes the create event of every
// object it adds, as the repositories do: the router learns the routes and
// the scheduler the formations, whose jobs it then starts. Jobs and the
// old event log are not imported; deployments that had not finished are
// left out (the formations say what runs).

// Imported says what Import brought over.
type Imported struct {
	// Apps are the names of the apps imported.
	Apps []string `json:"apps"`
	// Counts of the other objects imported.
	Releases    int `json:"releases"`
	Artifacts   int `json:"artifacts"`
	Formations  int `json:"formations"`
	Routes      int `json:"routes"`
	LogDrains   int `json:"log_drains"`
	Resources   int `json:"resources"`
	Providers   int `json:"providers"`
	Deployments int `json:"deployments"`
	Keys        int `json:"keys"`
	APIKeys     int `json:"api_keys"`
	// Skipped says what was left out, and why.
	Skipped []string `json:"skipped,omitempty"`
}

// snapshot is what Import reads of the old controller database.
type snapshot struct {
	apps        []*controller.App
	releases    []*controller.Release
	artifacts   []*controller.Artifact
	formations  []*controller.Formation
	routes      []*controller.Route
	logDrains   []*controller.LogDrain
	providers   []*controller.Provider
	resources   []*controller.Resource
	deployments []*controller.Deployment
	keys        []*controller.Key
	apiKeys     []apiKeyRow
}

type apiKeyRow struct {
	key  *controller.APIKey
	hash []byte
}

// ImportOptions change what Import brings.
type ImportOptions struct {
	// BlobURL, when set, returns the value to keep of each env variable
	// of an imported release and of each imported artifact's URI: a
	// restore signs the old cluster's blob URLs (SLUG_URL, an uploaded
	// image's archive) again with this cluster's key.
	BlobURL func(value string) string
}

// Import copies into the store the people's objects of the controller
// database named database on the store's own server (see above), then
// drops that database. The database is first brought up to this
// controller's schema; one from a newer controller is refused. Import
// refuses to bring an app whose id or name this cluster has (ErrExists),
// and then changes nothing; the database is kept on any failure.
func (s *Store) Import(ctx context.Context, database string, opts ImportOptions) (*Imported, error) {
	cfg := s.Pool.Config().Copy()
	cfg.ConnConfig.Database = database
	cfg.MaxConns = 2
	src, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("import: connect to %s: %w", database, err)
	}
	defer src.Close()
	if err := checkSchema(ctx, src); err != nil {
		return nil, err
	}
	if err := Migrate(ctx, src); err != nil {
		return nil, fmt.Errorf("import: bring %s up to this controller's schema: %w", database, err)
	}
	snap, err := readSnapshot(ctx, src)
	if err != nil {
		return nil, err
	}
	if opts.BlobURL != nil {
		for _, r := range snap.releases {
			for k, v := range r.Env {
				r.Env[k] = opts.BlobURL(v)
			}
		}
		for _, a := range snap.artifacts {
			a.URI = opts.BlobURL(a.URI)
		}
	}
	var imp *Imported
	err = (&db{pool: s.Pool}).inTx(ctx, func(tx pgx.Tx) error {
		var err error
		imp, err = writeSnapshot(ctx, tx, snap)
		return err
	})
	if err != nil {
		return nil, err
	}
	// A database is dropped only when nobody is connected to it.
	src.Close()
	if _, err := s.Pool.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{database}.Sanitize()); err != nil {
		imp.Skipped = append(imp.Skipped, fmt.Sprintf("the scratch database %s could not be dropped (%v): drop it by hand", database, err))
	}
	return imp, nil
}

// checkSchema refuses a database that has migrations this controller does
// not know: it was written by a newer controller.
func checkSchema(ctx context.Context, src *pgxpool.Pool) error {
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	known, err := migrate.Load(files)
	if err != nil {
		return err
	}
	var exists bool
	if err := src.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL AND to_regclass('apps') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("import: read the backup's schema: %w", err)
	}
	if !exists {
		return &Error{Err: ErrInvalid, Message: "the backup's controller database holds no controller tables"}
	}
	rows, err := src.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return fmt.Errorf("import: read the backup's schema: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("import: read the backup's schema: %w", err)
	}
	for _, v := range versions {
		if !slices.ContainsFunc(known, func(m migrate.Migration) bool { return m.Version == int(v) }) {
			return &Error{Err: ErrInvalid, Message: fmt.Sprintf(
				"the backup's controller database has migration %d, which this controller does not know: restore it with a Flynn at least as new as the one that made it", v)}
		}
	}
	return nil
}

// people selects the apps Import brings: those that are not system apps.
const people = `(SELECT id FROM apps WHERE NOT system)`

// readSnapshot reads what Import brings, in one snapshot of src.
func readSnapshot(ctx context.Context, src *pgxpool.Pool) (*snapshot, error) {
	tx, err := src.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("import: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	snap := &snapshot{}
	reads := []struct {
		what string
		run  func() error
	}{
		{"apps", func() (err error) {
			snap.apps, err = collect(ctx, tx, scanApp, `SELECT `+appColumns+` FROM apps WHERE NOT system ORDER BY created_at, id`)
			return err
		}},
		{"releases", func() (err error) {
			snap.releases, err = collect(ctx, tx, scanRelease, `SELECT `+releaseColumns+` FROM releases WHERE app_id IN `+people+` ORDER BY created_at, id`)
			return err
		}},
		{"artifacts", func() (err error) {
			snap.artifacts, err = collect(ctx, tx, scanArtifact, `SELECT `+artifactColumns+` FROM artifacts
				WHERE id IN (SELECT artifact_id FROM releases WHERE app_id IN `+people+`) ORDER BY created_at, id`)
			return err
		}},
		{"formations", func() (err error) {
			snap.formations, err = collect(ctx, tx, scanFormation, `SELECT `+formationColumns+` FROM formations WHERE app_id IN `+people+` ORDER BY created_at, release_id`)
			return err
		}},
		{"routes", func() (err error) {
			snap.routes, err = collect(ctx, tx, scanRoute, `SELECT `+routeColumns+` FROM routes WHERE app_id IN `+people+` ORDER BY created_at, id`)
			return err
		}},
		{"log drains", func() (err error) {
			snap.logDrains, err = collect(ctx, tx, scanLogDrain, `SELECT `+logDrainColumns+` FROM log_drains WHERE app_id IN `+people+` ORDER BY created_at, id`)
			return err
		}},
		{"resources", func() (err error) {
			snap.resources, err = collect(ctx, tx, scanResource, resourceSelect+
				`WHERE r.id IN (SELECT resource_id FROM app_resources WHERE app_id IN `+people+`) ORDER BY r.created_at, r.id`)
			return err
		}},
		{"providers", func() (err error) {
			snap.providers, err = collect(ctx, tx, scanProvider, `SELECT `+providerColumns+` FROM providers
				WHERE id IN (SELECT provider_id FROM resources WHERE id IN (SELECT resource_id FROM app_resources WHERE app_id IN `+people+`))
				ORDER BY created_at, id`)
			return err
		}},
		{"deployments", func() (err error) {
			snap.deployments, err = collect(ctx, tx, scanDeployment, `SELECT `+deploymentColumns+` FROM deployments
				WHERE app_id IN `+people+` AND status IN ('complete', 'failed') ORDER BY created_at, id`)
			return err
		}},
		{"SSH keys", func() (err error) {
			snap.keys, err = collect(ctx, tx, scanKey, `SELECT `+keyColumns+` FROM keys ORDER BY created_at, id`)
			return err
		}},
		{"API keys", func() (err error) {
			snap.apiKeys, err = collect(ctx, tx, func(row pgx.Row) (apiKeyRow, error) {
				k := apiKeyRow{key: &controller.APIKey{}}
				err := row.Scan(&k.key.ID, &k.key.Name, &k.key.CreatedAt, &k.hash)
				return k, err
			}, `SELECT `+apiKeyColumns+`, hash FROM api_keys ORDER BY created_at, id`)
			return err
		}},
	}
	for _, r := range reads {
		if err := r.run(); err != nil {
			return nil, fmt.Errorf("import: read %s: %w", r.what, err)
		}
	}
	return snap, tx.Commit(ctx)
}

// collect runs a query and scans every row.
func collect[T any](ctx context.Context, q querier, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
}

// writeSnapshot adds snap to the store in tx and writes the events.
func writeSnapshot(ctx context.Context, tx pgx.Tx, snap *snapshot) (*Imported, error) {
	imp := &Imported{Apps: []string{}}
	if err := refuseTakenApps(ctx, tx, snap.apps); err != nil {
		return nil, err
	}
	var (
		appChanges, relChanges, otherChanges, keyChanges []change
		artChanges, provChanges                          []change
	)

	// Providers by name: the backup's provider id → this cluster's.
	providerIDs := map[string]string{}
	for _, p := range snap.providers {
		var id string
		err := tx.QueryRow(ctx, `SELECT id::text FROM providers WHERE name = $1`, p.Name).Scan(&id)
		if err == nil {
			providerIDs[p.ID] = id
			continue
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("import: look up provider %s: %w", p.Name, err)
		}
		created, err := scanProvider(tx.QueryRow(ctx, `INSERT INTO providers (id, name, url, created_at)
			VALUES (CASE WHEN EXISTS (SELECT 1 FROM providers WHERE id = $1) THEN gen_random_uuid() ELSE $1::uuid END, $2, $3, $4)
			RETURNING `+providerColumns, p.ID, p.Name, p.URL, p.CreatedAt))
		if err != nil {
			return nil, fmt.Errorf("import: provider %s: %w", p.Name, mapError(err, "provider"))
		}
		providerIDs[p.ID] = created.ID
		imp.Providers++
		imp.Skipped = append(imp.Skipped, fmt.Sprintf("provider %s was not on this cluster: brought over with its URL (%s)", p.Name, redactURL(p.URL)))
		provChanges = append(provChanges, change{"", controller.ObjectTypeProvider, created.ID, controller.OpCreate, created})
	}

	for _, a := range snap.artifacts {
		created, err := scanArtifact(tx.QueryRow(ctx, `INSERT INTO artifacts (id, type, uri, meta, created_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (id) DO NOTHING RETURNING `+artifactColumns, a.ID, a.Type, a.URI, nonNil(a.Meta), a.CreatedAt))
		if errors.Is(err, pgx.ErrNoRows) {
			continue // this cluster has it
		}
		if err != nil {
			return nil, fmt.Errorf("import: artifact %s: %w", a.ID, mapError(err, "artifact"))
		}
		imp.Artifacts++
		artChanges = append(artChanges, change{"", controller.ObjectTypeArtifact, created.ID, controller.OpCreate, created})
	}

	for _, a := range snap.apps {
		if _, err := tx.Exec(ctx, `INSERT INTO apps (id, name, meta, strategy, stack, system, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, false, $6, $7)`,
			a.ID, a.Name, nonNil(a.Meta), a.Strategy, a.Stack, a.CreatedAt, a.UpdatedAt); err != nil {
			return nil, fmt.Errorf("import: app %s: %w", a.Name, mapError(err, "app"))
		}
	}
	for _, r := range snap.releases {
		var artifactID *string
		if r.ArtifactID != "" {
			artifactID = &r.ArtifactID
		}
		created, err := scanRelease(tx.QueryRow(ctx, `INSERT INTO releases (id, app_id, version, artifact_id, env, processes, meta, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+releaseColumns,
			r.ID, r.AppID, r.Version, artifactID, nonNil(r.Env), nonNilProcesses(r.Processes), nonNil(r.Meta), r.CreatedAt))
		if err != nil {
			return nil, fmt.Errorf("import: release %s: %w", r.ID, mapError(err, "release"))
		}
		imp.Releases++
		relChanges = append(relChanges, change{created.AppID, controller.ObjectTypeRelease, created.ID, controller.OpCreate, created})
	}
	for _, a := range snap.apps {
		var releaseID *string
		if a.ReleaseID != "" {
			releaseID = &a.ReleaseID
		}
		created, err := scanApp(tx.QueryRow(ctx, `UPDATE apps SET release_id = $2 WHERE id = $1 RETURNING `+appColumns, a.ID, releaseID))
		if err != nil {
			return nil, fmt.Errorf("import: app %s: %w", a.Name, mapError(err, "app"))
		}
		imp.Apps = append(imp.Apps, created.Name)
		appChanges = append(appChanges, change{created.ID, controller.ObjectTypeApp, created.ID, controller.OpCreate, created})
	}

	for _, f := range snap.formations {
		created, err := scanFormation(tx.QueryRow(ctx, `INSERT INTO formations (app_id, release_id, processes, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5) RETURNING `+formationColumns, f.AppID, f.ReleaseID, nonNilCounts(f.Processes), f.CreatedAt, f.UpdatedAt))
		if err != nil {
			return nil, fmt.Errorf("import: formation of %s: %w", f.AppID, mapError(err, "formation"))
		}
		imp.Formations++
		otherChanges = append(otherChanges, change{created.AppID, controller.ObjectTypeFormation, formationID(created), controller.OpCreate, created})
	}

	if len(snap.routes) > 0 {
		// Serialise with the creation of TCP routes (RouteRepo.Create),
		// which picks free ports.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, tcpPortLock); err != nil {
			return nil, fmt.Errorf("import: lock tcp ports: %w", err)
		}
	}
	appNames := map[string]string{}
	for _, a := range snap.apps {
		appNames[a.ID] = a.Name
	}
	for _, rt := range snap.routes {
		created, err := scanRoute(tx.QueryRow(ctx, `INSERT INTO routes (id, app_id, type, service, domain, path, sticky, certificate, port, drain_backends, no_request_log, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING `+routeColumns,
			rt.ID, rt.AppID, rt.Type, rt.Service, rt.Domain, rt.Path, rt.Sticky, rt.Certificate, rt.Port, rt.DrainBackends, rt.NoRequestLog, rt.CreatedAt, rt.UpdatedAt))
		if err != nil {
			err = mapError(err, "route")
			var se *Error
			if errors.As(err, &se) && errors.Is(err, ErrExists) {
				return nil, &Error{Err: ErrExists, Field: se.Field, Message: fmt.Sprintf("route %s of app %s: this cluster has a route for it already", describeRoute(rt), appNames[rt.AppID])}
			}
			return nil, fmt.Errorf("import: route %s: %w", rt.ID, err)
		}
		imp.Routes++
		otherChanges = append(otherChanges, change{created.AppID, controller.ObjectTypeRoute, created.ID, controller.OpCreate, created})
	}

	for _, d := range snap.logDrains {
		created, err := scanLogDrain(tx.QueryRow(ctx, `INSERT INTO log_drains (id, app_id, url, created_at) VALUES ($1, $2, $3, $4) RETURNING `+logDrainColumns,
			d.ID, d.AppID, d.URL, d.CreatedAt))
		if err != nil {
			return nil, fmt.Errorf("import: log drain %s of app %s: %w", d.ID, appNames[d.AppID], mapError(err, "log drain"))
		}
		imp.LogDrains++
		otherChanges = append(otherChanges, change{created.AppID, controller.ObjectTypeLogDrain, created.ID, controller.OpCreate, created})
	}

	for _, res := range snap.resources {
		if _, err := tx.Exec(ctx, `INSERT INTO resources (id, provider_id, external_id, env, created_at) VALUES ($1, $2, $3, $4, $5)`,
			res.ID, providerIDs[res.ProviderID], res.ExternalID, nonNil(res.Env), res.CreatedAt); err != nil {
			return nil, fmt.Errorf("import: resource %s: %w", res.ID, mapError(err, "resource"))
		}
		for _, appID := range res.Apps {
			if _, ok := appNames[appID]; !ok {
				continue // a system app's link: this cluster has its own
			}
			if _, err := tx.Exec(ctx, `INSERT INTO app_resources (app_id, resource_id) VALUES ($1, $2)`, appID, res.ID); err != nil {
				return nil, fmt.Errorf("import: resource %s: %w", res.ID, mapError(err, "resource"))
			}
		}
		created, err := scanResource(tx.QueryRow(ctx, resourceSelect+`WHERE r.id = $1`, res.ID))
		if err != nil {
			return nil, fmt.Errorf("import: resource %s: %w", res.ID, err)
		}
		appID := ""
		if len(created.Apps) == 1 {
			appID = created.Apps[0]
		}
		imp.Resources++
		otherChanges = append(otherChanges, change{appID, controller.ObjectTypeResource, created.ID, controller.OpCreate, created})
	}

	for _, d := range snap.deployments {
		var oldRelease *string
		if d.OldReleaseID != "" {
			oldRelease = &d.OldReleaseID
		}
		created, err := scanDeployment(tx.QueryRow(ctx, `INSERT INTO deployments (id, app_id, old_release_id, new_release_id, strategy, status, processes, error, created_at, finished_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING `+deploymentColumns,
			d.ID, d.AppID, oldRelease, d.NewReleaseID, d.Strategy, d.Status, nonNilCounts(d.Processes), d.Error, d.CreatedAt, d.FinishedAt))
		if err != nil {
			return nil, fmt.Errorf("import: deployment %s: %w", d.ID, mapError(err, "deployment"))
		}
		imp.Deployments++
		otherChanges = append(otherChanges, change{created.AppID, controller.ObjectTypeDeployment, created.ID, controller.OpCreate, created})
	}

	for _, k := range snap.keys {
		created, err := scanKey(tx.QueryRow(ctx, `INSERT INTO keys (id, key, fingerprint, comment, created_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT DO NOTHING RETURNING `+keyColumns, k.ID, k.Key, k.Fingerprint, k.Comment, k.CreatedAt))
		if errors.Is(err, pgx.ErrNoRows) {
			continue // this cluster knows the key already
		}
		if err != nil {
			return nil, fmt.Errorf("import: SSH key %s: %w", k.Fingerprint, mapError(err, "key"))
		}
		imp.Keys++
		keyChanges = append(keyChanges, change{"", controller.ObjectTypeKey, created.ID, controller.OpCreate, created})
	}
	for _, k := range snap.apiKeys {
		created, err := scanAPIKey(tx.QueryRow(ctx, `INSERT INTO api_keys (id, name, hash, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING RETURNING `+apiKeyColumns, k.key.ID, k.key.Name, k.hash, k.key.CreatedAt))
		if errors.Is(err, pgx.ErrNoRows) {
			imp.Skipped = append(imp.Skipped, fmt.Sprintf("API key %q: this cluster has a key of that name (or that key) already; the backup's is left out", k.key.Name))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("import: API key %s: %w", k.key.Name, mapError(err, "API key"))
		}
		imp.APIKeys++
		keyChanges = append(keyChanges, change{"", controller.ObjectTypeAPIKey, created.ID, controller.OpCreate, created})
	}

	// In the order a follower needs them: what a formation or route
	// refers to comes before it.
	var changes []change
	for _, cs := range [][]change{provChanges, artChanges, appChanges, relChanges, otherChanges, keyChanges} {
		changes = append(changes, cs...)
	}
	return imp, emit(ctx, tx, changes...)
}

// refuseTakenApps refuses apps whose id or name this cluster has.
func refuseTakenApps(ctx context.Context, tx pgx.Tx, apps []*controller.App) error {
	ids, names := make([]string, len(apps)), make([]string, len(apps))
	for i, a := range apps {
		ids[i], names[i] = a.ID, a.Name
	}
	rows, err := tx.Query(ctx, `SELECT name FROM apps WHERE id = ANY($1::uuid[]) OR name = ANY($2) ORDER BY name`, ids, names)
	if err != nil {
		return fmt.Errorf("import: look for apps in the way: %w", err)
	}
	taken, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("import: look for apps in the way: %w", err)
	}
	if len(taken) > 0 {
		return &Error{Err: ErrExists, Field: "apps", Message: fmt.Sprintf("this cluster has apps the backup has too: %s", strings.Join(taken, ", "))}
	}
	return nil
}

func describeRoute(rt *controller.Route) string {
	if rt.Type == controller.RouteTypeTCP {
		return fmt.Sprintf("tcp port %d", rt.Port)
	}
	return rt.Domain + rt.Path
}

// redactURL drops the userinfo (a provider's key) from a URL for a
// message.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 && at < strings.IndexByte(rest+"/", '/') {
		rest = rest[at+1:]
	}
	return scheme + "://" + rest
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func nonNilCounts(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

func nonNilProcesses(m map[string]controller.ProcessType) map[string]controller.ProcessType {
	if m == nil {
		return map[string]controller.ProcessType{}
	}
	return m
}
