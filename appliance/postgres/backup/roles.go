package backup

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// A backup's roles are a script, roles.sql, that a restore runs in one
// transaction and that psql could run as well. pg_dumpall --roles-only
// would write every role whatever exists where it is run, and its ALTER
// ROLE … PASSWORD would change the password of a role the new cluster has
// already (its own platform roles); so the script is written here, each
// role in a block that creates it only where no role of its name exists,
// and records the roles it made in a temporary table, which the
// memberships and the restore then read.
//
// Left out: superusers and roles with REPLICATION (the new cluster has its
// own, with its own passwords), Postgres's predefined pg_* roles, and
// per-role settings (ALTER ROLE … SET), which the appliance does not use.

// createdTable is the temporary table of the roles the script made.
const createdTable = "flynn_restored_roles"

type role struct {
	name                                            string
	inherit, createRole, createDB, login, bypassRLS bool
	connLimit                                       int
	password                                        *string
	// validUntil is text: it may be 'infinity', which time.Time is not.
	validUntil *string
}

type membership struct {
	role, member string
	admin        bool
}

// dumpRoles returns the roles script of the server c is connected to.
func dumpRoles(ctx context.Context, c *pgx.Conn) (string, error) {
	rows, err := c.Query(ctx, `SELECT rolname, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolbypassrls,
			rolconnlimit, rolpassword, rolvaliduntil::text
		FROM pg_authid WHERE NOT rolsuper AND NOT rolreplication AND rolname !~ '^pg_' ORDER BY rolname`)
	if err != nil {
		return "", fmt.Errorf("read roles: %w", err)
	}
	roles, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (role, error) {
		var r role
		err := row.Scan(&r.name, &r.inherit, &r.createRole, &r.createDB, &r.login, &r.bypassRLS, &r.connLimit, &r.password, &r.validUntil)
		return r, err
	})
	if err != nil {
		return "", fmt.Errorf("read roles: %w", err)
	}
	// Memberships of the roles above in roles above or predefined ones.
	rows, err = c.Query(ctx, `SELECT g.rolname, m.rolname, a.admin_option
		FROM pg_auth_members a JOIN pg_authid g ON g.oid = a.roleid JOIN pg_authid m ON m.oid = a.member
		WHERE NOT m.rolsuper AND NOT m.rolreplication AND m.rolname !~ '^pg_'
			AND NOT g.rolsuper AND NOT g.rolreplication
		ORDER BY m.rolname, g.rolname`)
	if err != nil {
		return "", fmt.Errorf("read role memberships: %w", err)
	}
	members, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (membership, error) {
		var m membership
		err := row.Scan(&m.role, &m.member, &m.admin)
		return m, err
	})
	if err != nil {
		return "", fmt.Errorf("read role memberships: %w", err)
	}
	return rolesScript(roles, members), nil
}

// rolesScript writes the script of roles and memberships.
func rolesScript(roles []role, members []membership) string {
	var b strings.Builder
	b.WriteString(`-- The roles of a Flynn cluster backup (appliance/postgres/backup). Each is
-- created only where no role of its name exists: a cluster's own roles, and
-- their passwords, stay as they are.
SET standard_conforming_strings = on;
CREATE TEMPORARY TABLE IF NOT EXISTS ` + createdTable + ` (name text PRIMARY KEY);
`)
	for _, r := range roles {
		b.WriteString("\n")
		b.WriteString(doBlock(fmt.Sprintf(`IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = %s) THEN
	CREATE ROLE %s WITH %s;
	INSERT INTO %s VALUES (%s);
END IF;`, literal(r.name), ident(r.name), r.options(), createdTable, literal(r.name))))
	}
	for _, m := range members {
		admin := ""
		if m.admin {
			admin = " WITH ADMIN OPTION"
		}
		b.WriteString("\n")
		b.WriteString(doBlock(fmt.Sprintf(`IF EXISTS (SELECT FROM %s WHERE name = %s) AND EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = %s) THEN
	GRANT %s TO %s%s;
END IF;`, createdTable, literal(m.member), literal(m.role), ident(m.role), ident(m.member), admin)))
	}
	return b.String()
}

// options are the role's attributes as CREATE ROLE takes them.
func (r role) options() string {
	flag := func(on bool, name string) string {
		if on {
			return name
		}
		return "NO" + name
	}
	opts := []string{
		"NOSUPERUSER", flag(r.inherit, "INHERIT"), flag(r.createRole, "CREATEROLE"), flag(r.createDB, "CREATEDB"),
		flag(r.login, "LOGIN"), "NOREPLICATION", flag(r.bypassRLS, "BYPASSRLS"),
		"CONNECTION LIMIT " + strconv.Itoa(r.connLimit),
	}
	if r.password != nil {
		// The stored hash (SCRAM-SHA-256$…): Postgres keeps a password
		// given in that form as it is.
		opts = append(opts, "PASSWORD "+literal(*r.password))
	}
	if r.validUntil != nil {
		opts = append(opts, "VALID UNTIL "+literal(*r.validUntil))
	}
	return strings.Join(opts, " ")
}

// doBlock wraps PL/pgSQL statements in a DO block, with a dollar quote
// that the body does not contain.
func doBlock(body string) string {
	tag := "$flynn$"
	for i := 1; strings.Contains(body, tag); i++ {
		tag = "$flynn" + strconv.Itoa(i) + "$"
	}
	return "DO " + tag + "\nBEGIN\n" + body + "\nEND\n" + tag + ";\n"
}

// restoreRoles runs a roles script on c in one transaction and returns
// the roles it created.
func restoreRoles(ctx context.Context, c *pgx.Conn, script string) ([]string, error) {
	tx, err := c.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("restore roles: %w", err)
	}
	defer tx.Rollback(ctx)
	// The simple protocol runs the whole script, many statements.
	if _, err := tx.Conn().PgConn().Exec(ctx, script).ReadAll(); err != nil {
		return nil, fmt.Errorf("restore roles: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT name FROM `+createdTable+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("restore roles: %w", err)
	}
	created, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("restore roles: %w", err)
	}
	if _, err := tx.Exec(ctx, `DROP TABLE `+createdTable); err != nil {
		return nil, fmt.Errorf("restore roles: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("restore roles: %w", err)
	}
	return created, nil
}
