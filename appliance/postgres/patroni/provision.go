package patroni

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/openflynn/flynn/appliance/postgres"
	"github.com/openflynn/flynn/pkg/scram"
)

// provisioner makes the primary hold what the release says: the
// superuser's and the replication user's passwords (the release's win,
// also over data kept from an earlier release) and the databases.
type provisioner struct {
	// socketDir and port reach the primary through its Unix socket, as
	// the superuser by peer authentication: no password needed, so that a
	// changed password can be set.
	socketDir string
	port      int
	// password and replicationPassword are the roles' passwords.
	password, replicationPassword string
	// databases are created when missing.
	databases []string
}

// provision connects to the local primary and provisions it.
func (p *provisioner) provision(ctx context.Context) error {
	connCfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=postgres", quoteDSN(p.socketDir), p.port, postgres.SuperUser))
	if err != nil {
		return fmt.Errorf("connection config: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, connCfg)
	if err != nil {
		return fmt.Errorf("connect to the local primary: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := setRolePassword(ctx, conn, postgres.SuperUser, p.password, "SUPERUSER"); err != nil {
		return err
	}
	if err := setRolePassword(ctx, conn, postgres.ReplicationUser, p.replicationPassword, "REPLICATION"); err != nil {
		return err
	}
	for _, db := range p.databases {
		if err := createDatabase(ctx, conn, db); err != nil {
			return err
		}
	}
	// The platform's databases are the superuser's alone: every role may
	// connect to a new database, and the apps' roles log in here too.
	for _, db := range append([]string{"postgres"}, p.databases...) {
		if _, err := conn.Exec(ctx, "REVOKE CONNECT, TEMPORARY ON DATABASE "+pgx.Identifier{db}.Sanitize()+" FROM PUBLIC"); err != nil {
			return fmt.Errorf("keep database %s the platform's: %w", db, err)
		}
	}
	return nil
}

// setRolePassword creates role (LOGIN and attrs) with password, or sets
// its password when it has another. Only a verifier is sent.
func setRolePassword(ctx context.Context, conn *pgx.Conn, role, password, attrs string) error {
	var stored *string
	err := conn.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&stored)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("look up role %s: %w", role, err)
	}
	if exists && stored != nil && scram.Matches(*stored, password) {
		return nil
	}
	verifier, err := scram.Verifier(password)
	if err != nil {
		return err
	}
	verb := "ALTER"
	if !exists {
		verb = "CREATE"
	}
	// Utility statements take no parameters; the verifier is base64 and
	// '$' and ':', which need no quoting inside a literal.
	sql := fmt.Sprintf("%s ROLE %s WITH LOGIN %s PASSWORD '%s'", verb, pgx.Identifier{role}.Sanitize(), attrs, verifier)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s role %s: %w", strings.ToLower(verb), role, err)
	}
	return nil
}

// createDatabase creates db unless it exists.
func createDatabase(ctx context.Context, conn *pgx.Conn, db string) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", db, err)
	}
	if exists {
		return nil
	}
	_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: made meanwhile
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", db, err)
	}
	return nil
}

// quoteDSN quotes a value of a keyword/value connection string.
func quoteDSN(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
