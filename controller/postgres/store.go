// Package postgres is the controller's store: one repository per entity
// over a pgx pool, the embedded SQL migrations, and the event log that every
// change writes in its own transaction.
//
// Repositories refuse what a caller got wrong with an *Error around one of
// the sentinel errors (ErrNotFound, ErrExists, ErrConflict, ErrPrecondition,
// ErrInvalid) and return wrapped errors for everything else; the server maps
// the sentinels to API errors in one place.
package postgres

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store groups the repositories over one pool.
type Store struct {
	Pool        *pgxpool.Pool
	Apps        *AppRepo
	Artifacts   *ArtifactRepo
	Releases    *ReleaseRepo
	Formations  *FormationRepo
	Jobs        *JobRepo
	Routes      *RouteRepo
	Keys        *KeyRepo
	APIKeys     *APIKeyRepo
	Providers   *ProviderRepo
	Resources   *ResourceRepo
	Deployments *DeploymentRepo
	Events      *EventRepo
	LogDrains   *LogDrainRepo
	BuildEnv    *BuildEnvRepo
}

// Options configures Open. The zero value connects to the URL's host as
// it is.
type Options struct {
	// DialFunc, when set, opens every connection of the pool, given the
	// URL's host name unresolved: a host like "leader.postgres.discoverd"
	// is then found by the dialer (discoverd/client.Dialer) at each
	// connection, so the controller follows Postgres as it moves.
	DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)
}

// ErrDatabaseURL is Open's error for a URL that is no Postgres
// connection string: trying again cannot help.
var ErrDatabaseURL = errors.New("malformed database URL")

// Open connects to the database at url and applies the migrations.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDatabaseURL, err)
	}
	if opts.DialFunc != nil {
		cfg.ConnConfig.DialFunc = opts.DialFunc
		cfg.ConnConfig.LookupFunc = unresolved
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return New(pool), nil
}

// unresolved hands a host name on to the dialer as it is, where pgx would
// look it up in DNS first.
func unresolved(_ context.Context, host string) ([]string, error) { return []string{host}, nil }

// New returns a Store over an already migrated pool.
func New(pool *pgxpool.Pool) *Store {
	db := &db{pool: pool}
	return &Store{
		Pool:        pool,
		Apps:        &AppRepo{db},
		Artifacts:   &ArtifactRepo{db},
		Releases:    &ReleaseRepo{db},
		Formations:  &FormationRepo{db},
		Jobs:        &JobRepo{db},
		Routes:      &RouteRepo{db},
		Keys:        &KeyRepo{db},
		APIKeys:     &APIKeyRepo{db},
		Providers:   &ProviderRepo{db},
		Resources:   &ResourceRepo{db},
		Deployments: &DeploymentRepo{db},
		Events:      &EventRepo{db},
		LogDrains:   &LogDrainRepo{db},
		BuildEnv:    &BuildEnvRepo{db},
	}
}

// Close closes the pool.
func (s *Store) Close() { s.Pool.Close() }

type db struct {
	pool *pgxpool.Pool
}

// inTx runs fn in a transaction, committing when it returns nil.
func (d *db) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", mapError(err, ""))
	}
	return nil
}

// querier is what both the pool and a transaction offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// IsUUID reports whether s is a UUID in text form: other strings never name
// a row by id, and Postgres would reject them with a type error.
func IsUUID(s string) bool { return uuidRE.MatchString(s) }

// mapError turns no rows and Postgres constraint violations into the
// store's refusals; what names the kind of object for the message.
func mapError(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound(what)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch pgErr.Code {
	case "23505": // unique_violation
		return &Error{Err: ErrExists, Field: uniqueField(pgErr.ConstraintName), Message: what + " already exists"}
	case "23503": // foreign_key_violation
		return invalid("", "%s refers to a missing object (%s)", what, pgErr.ConstraintName)
	case "22P02", "22023": // invalid_text_representation, invalid_parameter_value
		return notFound(what)
	}
	return err
}

func uniqueField(constraint string) string {
	switch {
	case strings.HasSuffix(constraint, "_pkey"):
		return "id"
	case constraint == "apps_name_key", constraint == "providers_name_key", constraint == "api_keys_name_key":
		return "name"
	case constraint == "routes_http":
		return "domain"
	case constraint == "routes_tcp":
		return "port"
	case constraint == "keys_fingerprint_key":
		return "key"
	case constraint == "log_drains_app_url":
		return "url"
	}
	return ""
}

// Page selects one page of a list ordered by creation time.
type Page struct {
	// Limit caps the rows returned; 0 means DefaultPageSize.
	Limit int
	// Cursor continues after the last row of the previous page; "" starts
	// at the beginning.
	Cursor string
}

// DefaultPageSize and MaxPageSize bound list pages.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return DefaultPageSize
	case p.Limit > MaxPageSize:
		return MaxPageSize
	}
	return p.Limit
}

// cursor is the keyset position (created_at, id) of a row.
type cursor struct {
	at time.Time
	id string
}

// after returns the position a page starts after, or the zero position.
func (p Page) after() (cursor, error) {
	if p.Cursor == "" {
		return cursor{id: ""}, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(p.Cursor)
	if err != nil {
		return cursor{}, invalid("cursor", "malformed cursor")
	}
	at, id, ok := strings.Cut(string(raw), "|")
	t, err := time.Parse(time.RFC3339Nano, at)
	if !ok || err != nil {
		return cursor{}, invalid("cursor", "malformed cursor")
	}
	return cursor{at: t, id: id}, nil
}

// nextCursor returns the cursor of the page after one ending with the row
// (at, id), or "" when the page was not full (so nothing follows).
func nextCursor(n, limit int, at time.Time, id string) string {
	if n < limit {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

// listPage runs "SELECT … FROM table WHERE cond" (cond may use $1…$len(args))
// for one page in (created_at, id) order and returns the rows and the next
// cursor.
func listPage[T any](ctx context.Context, q querier, p Page, what, selectWhere string, args []any,
	scan func(pgx.Row) (T, error), key func(T) (time.Time, string)) ([]T, string, error) {
	after, err := p.after()
	if err != nil {
		return nil, "", err
	}
	n := len(args)
	sql := fmt.Sprintf(`%s AND (created_at, id::text) > ($%d, $%d) ORDER BY created_at, id::text LIMIT $%d`, selectWhere, n+1, n+2, n+3)
	rows, err := q.Query(ctx, sql, append(args, after.at, after.id, p.limit())...)
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", what, err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", what, err)
	}
	next := ""
	if len(list) > 0 {
		at, id := key(list[len(list)-1])
		next = nextCursor(len(list), p.limit(), at, id)
	}
	return list, next, nil
}
