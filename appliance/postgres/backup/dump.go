package backup

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/appliance/postgres/backup/archive"
)

// Dump writes a backup of the server's databases and roles to w as an
// archive. Each database is dumped on its own, to a temporary file that
// goes into the archive as soon as it is whole, so the bytes flow while the
// backup runs and the temporary space is that of the largest dump. The
// controller's database is dumped first and the blobstore's second: a
// release in the backup then always finds its slug, and a database an app
// got meanwhile is at worst in the backup without its resource.
//
// On failure the archive on w is left without its manifest, which every
// reader refuses.
func Dump(ctx context.Context, cfg Config, w io.Writer) error {
	cfg = cfg.withDefaults()
	srv, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	c, err := srv.conn(ctx, "postgres")
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	if err := isSuperuser(ctx, c); err != nil {
		return err
	}
	dbs, err := databases(ctx, c, cfg)
	if err != nil {
		return err
	}
	aw, err := archive.NewWriter(w, cfg.Now())
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(cfg.TempDir, "flynn-backup-")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmp)
	for i, db := range dbs {
		start := cfg.Now()
		size, err := dumpDatabase(ctx, srv, aw, db, filepath.Join(tmp, fmt.Sprintf("%d.dump", i)))
		if err != nil {
			return err
		}
		cfg.Logger.Info("database backed up", "database", db.Name, "kind", db.Kind, "bytes", size, "duration", cfg.Now().Sub(start))
	}
	// The roles come after the databases, so that the owner of every
	// database dumped is among them unless it was dropped meanwhile (its
	// app's resource removed), which a restore notices.
	roles, err := dumpRoles(ctx, c)
	if err != nil {
		return err
	}
	if err := aw.Add(archive.RolesName, int64(len(roles)), strings.NewReader(roles)); err != nil {
		return err
	}
	return aw.Close(dbs)
}

// dumpDatabase dumps db to the file path, adds it to the archive and
// removes the file.
func dumpDatabase(ctx context.Context, srv *server, aw *archive.Writer, db archive.Database, path string) (int64, error) {
	defer os.Remove(path)
	args := []string{"--format=custom", "--no-password", "--file=" + path, "--dbname=" + srv.dbURL(db.Name)}
	if db.Kind == archive.KindBlobstore {
		// Its chunks are slugs, compressed tarballs already.
		args = append(args, "--compress=0")
	}
	cmd := srv.command(ctx, srv.pgDump, args...)
	if err := run(cmd, "pg_dump "+db.Name); err != nil {
		return 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("backup %s: %w", db.Name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("backup %s: %w", db.Name, err)
	}
	if err := aw.Add(db.Entry, st.Size(), f); err != nil {
		return 0, fmt.Errorf("backup %s: %w", db.Name, err)
	}
	return st.Size(), nil
}

// databases lists the databases to back up, the controller's first and
// the blobstore's second, each with its kind, owner and entry name.
func databases(ctx context.Context, c *pgx.Conn, cfg Config) ([]archive.Database, error) {
	rows, err := c.Query(ctx, `SELECT datname, pg_get_userbyid(datdba) FROM pg_database
		WHERE datallowconn AND NOT datistemplate AND datname <> 'postgres' ORDER BY datname`)
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (archive.Database, error) {
		var db archive.Database
		err := row.Scan(&db.Name, &db.Owner)
		return db, err
	})
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	var out []archive.Database
	for i, db := range all {
		if slices.Contains(cfg.Exclude, db.Name) || db.Name == ControllerScratch || db.Name == BlobstoreScratch {
			continue
		}
		switch db.Name {
		case cfg.ControllerDatabase:
			db.Kind = archive.KindController
		case cfg.BlobstoreDatabase:
			db.Kind = archive.KindBlobstore
		default:
			db.Kind = archive.KindApp
		}
		// Entry names are for people reading the archive: the name where
		// it is plain, else its position, marked by a '#' no plain name
		// has (a restore never uses entry names as paths).
		db.Entry = "databases/" + db.Name + ".dump"
		if !plainName(db.Name) {
			db.Entry = fmt.Sprintf("databases/#%d.dump", i)
		}
		out = append(out, db)
	}
	rank := map[string]int{archive.KindController: 0, archive.KindBlobstore: 1, archive.KindApp: 2}
	slices.SortStableFunc(out, func(a, b archive.Database) int { return rank[a.Kind] - rank[b.Kind] })
	return out, nil
}

// plainName reports whether a database name makes a tidy file name.
func plainName(name string) bool {
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return name != ""
}
