package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openflynn/flynn/pkg/random"
	"github.com/openflynn/flynn/pkg/scram"
)

// ErrNotFound is Drop's answer for a name that is no database of ours.
var ErrNotFound = errors.New("no such database")

// namePrefix starts the name of every database (and its role) this
// provider makes; Drop touches nothing else, so a DELETE of "controller"
// or "postgres" can never drop the platform's own databases.
const namePrefix = "app_"

// nameRE is the names Create makes: the prefix and 16 random hex digits,
// lower case, so a safe identifier that needs no quoting (it is quoted
// anyway) and fits Postgres's 63-byte limit.
var nameRE = regexp.MustCompile(`^` + namePrefix + `[0-9a-f]{16}$`)

// ValidName reports whether name is one Create could have made.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Database is an app's database: its name, which is also its role's
// name, and the role's password.
type Database struct {
	Name     string
	Password string
}

// Databases creates and drops apps' databases on one Postgres server,
// through a superuser's pool. Each database has a role of its own, of the
// same name, which owns it and is the only role but superusers that may
// connect to it: its CONNECT privilege is revoked from PUBLIC, every role.
// One name for both lets the server's pg_hba.conf also admit a role only
// to its own database ("sameuser").
type Databases struct {
	pool *pgxpool.Pool
}

// NewDatabases returns Databases over pool, whose user must be a
// superuser (or have CREATEROLE and CREATEDB and be able to drop them).
func NewDatabases(pool *pgxpool.Pool) *Databases { return &Databases{pool: pool} }

// cleanupTimeout bounds the undoing of a half-made database after its
// request's context ended.
const cleanupTimeout = 30 * time.Second

// Create makes a role with a random password and a database it owns, that
// no other role (but superusers) may connect to. What a failure leaves
// half made is dropped again.
func (d *Databases) Create(ctx context.Context) (db *Database, err error) {
	name := namePrefix + random.Hex(8)
	password := random.Hex(24)
	verifier, err := scram.Verifier(password)
	if err != nil {
		return nil, err
	}
	ident := pgx.Identifier{name}.Sanitize()
	defer func() {
		if err == nil {
			return
		}
		// The request may have ended; the cleanup must still run.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if derr := d.drop(cctx, name); derr != nil && !errors.Is(derr, ErrNotFound) {
			err = fmt.Errorf("%w (and undoing it: %v)", err, derr)
		}
	}()
	// Utility statements take no parameters; the verifier is base64 and
	// '$', ':' so it needs no escaping, and is quoted as a literal anyway.
	if _, err := d.pool.Exec(ctx, `CREATE ROLE `+ident+` WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD `+quoteLiteral(verifier)); err != nil {
		return nil, fmt.Errorf("create role %s: %w", name, err)
	}
	// The database takes no connections until PUBLIC's CONNECT is
	// revoked: a role that connected in between would keep its session.
	if _, err := d.pool.Exec(ctx, `CREATE DATABASE `+ident+` OWNER `+ident+` ALLOW_CONNECTIONS false`); err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	if _, err := d.pool.Exec(ctx, `REVOKE ALL ON DATABASE `+ident+` FROM PUBLIC`); err != nil {
		return nil, fmt.Errorf("revoke public access to %s: %w", name, err)
	}
	if _, err := d.pool.Exec(ctx, `ALTER DATABASE `+ident+` ALLOW_CONNECTIONS true`); err != nil {
		return nil, fmt.Errorf("open database %s: %w", name, err)
	}
	return &Database{Name: name, Password: password}, nil
}

// Drop drops database name, with its role: the role may no longer log
// in, the database's sessions are ended and it is dropped, then the
// role's other sessions are ended and the role dropped. A retry after a
// failure finishes the job: Drop answers ErrNotFound only when neither
// the database nor the role is left, and for every name Create would not
// have made.
func (d *Databases) Drop(ctx context.Context, name string) error {
	if !ValidName(name) {
		return ErrNotFound
	}
	return d.drop(ctx, name)
}

func (d *Databases) drop(ctx context.Context, name string) error {
	var dbExists, roleExists bool
	err := d.pool.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND pg_get_userbyid(datdba) = $1),
		EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, name).Scan(&dbExists, &roleExists)
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if !dbExists && !roleExists {
		return ErrNotFound
	}
	ident := pgx.Identifier{name}.Sanitize()
	if roleExists {
		if _, err := d.pool.Exec(ctx, `ALTER ROLE `+ident+` NOLOGIN`); err != nil {
			return fmt.Errorf("lock role %s: %w", name, err)
		}
	}
	if dbExists {
		// FORCE ends the sessions on the database first.
		if _, err := d.pool.Exec(ctx, `DROP DATABASE IF EXISTS `+ident+` WITH (FORCE)`); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
	}
	if roleExists {
		// Sessions of the role on other databases (the temporary objects
		// of one would keep DROP ROLE from succeeding).
		if _, err := d.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, name); err != nil {
			return fmt.Errorf("end sessions of %s: %w", name, err)
		}
		if _, err := d.pool.Exec(ctx, `DROP ROLE IF EXISTS `+ident); err != nil {
			return fmt.Errorf("drop role %s: %w", name, err)
		}
	}
	return nil
}

// Ping checks that the server answers.
func (d *Databases) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings
// on, Postgres's default since 9.1).
func quoteLiteral(s string) string {
	out := make([]byte, 0, len(s)+2)
	out = append(out, '\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}
