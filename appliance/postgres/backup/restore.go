package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/appliance/postgres/backup/archive"
)

// The restore's refusals, besides the archive's own (archive.ErrNotBackup
// and the others), which Prepare returns as they are. Test for them with
// errors.Is.
var (
	// ErrConflict: the server has something in the way (an app database
	// of the backup's name with tables in it, a blobstore database
	// without the blobstore's tables).
	ErrConflict = errors.New("cannot restore onto this server")
	// ErrBusy: another restore is running on the server.
	ErrBusy = errors.New("another restore is running")
)

// restoreLock is the session advisory lock a restore holds on the
// server's "postgres" database from Prepare to Close ("flynnrst").
const restoreLock int64 = 0x666c796e6e727374

// undoTimeout bounds undoing a failed restore, which runs after its
// context may have ended.
const undoTimeout = 2 * time.Minute

// Result is what a restore did.
type Result struct {
	// CreatedAt is when the backup was made.
	CreatedAt time.Time `json:"created_at"`
	// Databases are the app databases restored.
	Databases []string `json:"databases"`
	// Roles are the roles created (those the server had already were
	// left as they were).
	Roles []string `json:"roles"`
	// ControllerDatabase is the scratch database that holds the backup's
	// controller database, for the controller to import from and drop;
	// empty when the backup has none.
	ControllerDatabase string `json:"controller_database,omitempty"`
	// BlobsAdded counts the blobs added to the blobstore's database;
	// BlobsKept those it had a blob of the same path for already, which
	// was kept.
	BlobsAdded int `json:"blobs_added"`
	BlobsKept  int `json:"blobs_kept"`
	// Skipped says what was left out, and why.
	Skipped []string `json:"skipped,omitempty"`
}

// Plan is a verified archive that nothing on the server is in the way of,
// ready to be applied, and the restore lock. Close it.
type Plan struct {
	cfg      Config
	srv      *server
	lock     *pgx.Conn
	dir      string
	files    *archive.Dir
	header   *archive.Header
	manifest *archive.Manifest
	// replace are app databases that exist with no tables in them: each is
	// dropped just before its dump is restored.
	replace map[string]bool
	// controllerOwner owns the live controller database, and will own the
	// scratch one, so that the controller can read and drop it.
	controllerOwner string
}

// Restore is Prepare, then Apply.
func Restore(ctx context.Context, cfg Config, r io.Reader, progress func(string)) (*Result, error) {
	p, err := Prepare(ctx, cfg, r)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.Apply(ctx, progress)
}

// Prepare takes the restore lock, reads the whole archive from r into a
// temporary directory and verifies it (see archive.Read), and checks that
// nothing on the server is in the way. It changes nothing on the server:
// an archive that is truncated, foreign or corrupt is refused here, with an
// error that wraps the archive package's, as is a server in the way
// (ErrConflict) or busy (ErrBusy).
func Prepare(ctx context.Context, cfg Config, r io.Reader) (_ *Plan, err error) {
	cfg = cfg.withDefaults()
	srv, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p := &Plan{cfg: cfg, srv: srv, replace: map[string]bool{}}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if p.lock, err = srv.conn(ctx, "postgres"); err != nil {
		return nil, err
	}
	if err := isSuperuser(ctx, p.lock); err != nil {
		return nil, err
	}
	var locked bool
	if err := p.lock.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, restoreLock).Scan(&locked); err != nil {
		return nil, fmt.Errorf("take the restore lock: %w", err)
	}
	if !locked {
		return nil, fmt.Errorf("%w on this server", ErrBusy)
	}
	if p.dir, err = os.MkdirTemp(cfg.TempDir, "flynn-restore-"); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	p.files = archive.NewDir(p.dir)
	if p.header, p.manifest, err = archive.Read(r, p.files); err != nil {
		return nil, err
	}
	if err := p.check(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Manifest returns what the archive holds.
func (p *Plan) Manifest() *archive.Manifest { return p.manifest }

// check refuses an archive whose roles entry is missing or whose
// databases the server cannot take, naming every database in the way.
func (p *Plan) check(ctx context.Context) error {
	if _, ok := p.manifest.Entry(archive.RolesName); !ok {
		return fmt.Errorf("%w: the backup has no %s", archive.ErrIncomplete, archive.RolesName)
	}
	var apps []string
	kinds := map[string]int{}
	for _, db := range p.manifest.Databases {
		kinds[db.Kind]++
		switch db.Kind {
		case archive.KindApp:
			apps = append(apps, db.Name)
		case archive.KindController, archive.KindBlobstore:
		default:
			return fmt.Errorf("%w: database %q is of the unknown kind %q", archive.ErrCorrupt, db.Name, db.Kind)
		}
	}
	if kinds[archive.KindController] > 1 || kinds[archive.KindBlobstore] > 1 {
		return fmt.Errorf("%w: the backup has more than one controller or blobstore database", archive.ErrCorrupt)
	}
	var inTheWay []string
	for _, name := range apps {
		switch {
		case name == "postgres" || name == "template0" || name == "template1" ||
			name == ControllerScratch || name == BlobstoreScratch:
			inTheWay = append(inTheWay, name+" (a name the server keeps for itself)")
			continue
		}
		exists, tables, err := p.tables(ctx, name)
		if err != nil {
			return err
		}
		switch {
		case tables > 0:
			inTheWay = append(inTheWay, fmt.Sprintf("%s (it exists here, with %d tables)", name, tables))
		case exists:
			p.replace[name] = true
		}
	}
	if len(inTheWay) > 0 {
		return fmt.Errorf("%w: databases of the backup are in the way: %s; restore onto a fresh cluster, or drop them first",
			ErrConflict, strings.Join(inTheWay, ", "))
	}
	if kinds[archive.KindBlobstore] > 0 {
		exists, _, err := p.tables(ctx, p.cfg.BlobstoreDatabase)
		if err != nil {
			return err
		}
		ok := false
		if exists {
			c, err := p.srv.conn(ctx, p.cfg.BlobstoreDatabase)
			if err != nil {
				return err
			}
			ok, err = hasBlobTables(ctx, c)
			c.Close(ctx)
			if err != nil {
				return err
			}
		}
		if !ok {
			return fmt.Errorf("%w: the blobstore's database %s has no blobstore tables yet (is the blobstore running?)", ErrConflict, p.cfg.BlobstoreDatabase)
		}
	}
	if kinds[archive.KindController] > 0 {
		err := p.lock.QueryRow(ctx, `SELECT coalesce((SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1), current_user)`,
			p.cfg.ControllerDatabase).Scan(&p.controllerOwner)
		if err != nil {
			return fmt.Errorf("find the controller database's owner: %w", err)
		}
	}
	return nil
}

// tables reports whether database name exists and how many tables,
// views, sequences and the like it has outside the system schemas.
func (p *Plan) tables(ctx context.Context, name string) (exists bool, n int, err error) {
	var allows bool
	err = p.lock.QueryRow(ctx, `SELECT datallowconn FROM pg_database WHERE datname = $1`, name).Scan(&allows)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("look up database %s: %w", name, err)
	}
	if !allows {
		return true, 1, nil // cannot look inside: count it as in use
	}
	c, err := p.srv.conn(ctx, name)
	if err != nil {
		return true, 0, err
	}
	defer c.Close(ctx)
	err = c.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
			AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'`).Scan(&n)
	if err != nil {
		return true, 0, fmt.Errorf("look into database %s: %w", name, err)
	}
	return true, n, nil
}

// Apply restores the archive: the roles, the app databases, the
// controller's database into ControllerScratch and the blobstore's blobs
// into the live blobstore database, calling progress (which may be nil)
// before each step. When a step fails it drops the databases and roles
// made so far (the blobs added stay: they are harmless, and the blob
// collector removes those no release names) and returns the error.
func (p *Plan) Apply(ctx context.Context, progress func(string)) (_ *Result, err error) {
	if progress == nil {
		progress = func(string) {}
	}
	res := &Result{CreatedAt: p.header.CreatedAt, Databases: []string{}, Roles: []string{}}
	var madeDBs []string
	defer func() {
		if err == nil {
			return
		}
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
		defer cancel()
		if uerr := p.undo(uctx, madeDBs, res.Roles); uerr != nil {
			err = fmt.Errorf("%w; undoing the restore also failed: %v", err, uerr)
		} else {
			err = fmt.Errorf("%w (the databases and roles this restore had made were dropped again)", err)
		}
	}()

	progress("restoring roles")
	script, err := p.read(archive.RolesName)
	if err != nil {
		return nil, err
	}
	if res.Roles, err = restoreRoles(ctx, p.lock, script); err != nil {
		return nil, err
	}
	if len(res.Roles) == 0 {
		res.Roles = []string{}
	}

	var controller, blobstore *archive.Database
	for i, db := range p.manifest.Databases {
		switch db.Kind {
		case archive.KindController:
			controller = &p.manifest.Databases[i]
			continue
		case archive.KindBlobstore:
			blobstore = &p.manifest.Databases[i]
			continue
		}
		var owned bool
		if err := p.lock.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, db.Owner).Scan(&owned); err != nil {
			return nil, fmt.Errorf("look up role %s: %w", db.Owner, err)
		}
		if !owned {
			// Its role was dropped while the backup ran: the app's
			// resource was being removed.
			res.Skipped = append(res.Skipped, fmt.Sprintf("database %s: its owner %s is not in the backup (dropped while the backup ran?)", db.Name, db.Owner))
			continue
		}
		progress("restoring database " + db.Name)
		if p.replace[db.Name] {
			if _, err := p.lock.Exec(ctx, `DROP DATABASE `+ident(db.Name)); err != nil {
				return nil, fmt.Errorf("drop the empty database %s to restore it: %w", db.Name, err)
			}
		}
		madeDBs = append(madeDBs, db.Name)
		path, _ := p.files.Path(db.Entry)
		cmd := p.srv.command(ctx, p.srv.pgRest, "--create", "--exit-on-error", "--no-password", "--dbname="+p.srv.dbURL("postgres"), path)
		if err := run(cmd, "pg_restore "+db.Name); err != nil {
			return nil, err
		}
		res.Databases = append(res.Databases, db.Name)
		p.cfg.Logger.Info("database restored", "database", db.Name)
	}

	if controller != nil {
		progress("restoring the controller's database")
		madeDBs = append(madeDBs, ControllerScratch)
		if err := p.scratch(ctx, ControllerScratch, p.controllerOwner, *controller); err != nil {
			return nil, err
		}
		res.ControllerDatabase = ControllerScratch
	}

	if blobstore != nil {
		progress("restoring the blobstore's blobs")
		madeDBs = append(madeDBs, BlobstoreScratch)
		if err := p.scratch(ctx, BlobstoreScratch, "", *blobstore); err != nil {
			return nil, err
		}
		if res.BlobsAdded, res.BlobsKept, err = mergeBlobs(ctx, p.srv, BlobstoreScratch, p.cfg.BlobstoreDatabase); err != nil {
			return nil, err
		}
		madeDBs = slices.DeleteFunc(madeDBs, func(s string) bool { return s == BlobstoreScratch })
		if _, err := p.lock.Exec(ctx, `DROP DATABASE IF EXISTS `+ident(BlobstoreScratch)+` WITH (FORCE)`); err != nil {
			p.cfg.Logger.Warn("drop the blobstore's scratch database", "database", BlobstoreScratch, "err", err)
		}
	}
	return res, nil
}

// scratch restores db's dump into a new database name owned by owner (the
// restoring superuser when empty), with every object owned by owner and
// none of the backup's privileges, in one transaction. A database of that
// name left over from an earlier restore is dropped first.
func (p *Plan) scratch(ctx context.Context, name, owner string, db archive.Database) error {
	if _, err := p.lock.Exec(ctx, `DROP DATABASE IF EXISTS `+ident(name)+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("drop the leftover database %s: %w", name, err)
	}
	create := `CREATE DATABASE ` + ident(name)
	if owner != "" {
		create += ` OWNER ` + ident(owner)
	}
	if _, err := p.lock.Exec(ctx, create); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	args := []string{"--no-owner", "--no-acl", "--single-transaction", "--exit-on-error", "--no-password", "--dbname=" + p.srv.dbURL(name)}
	if owner != "" {
		args = append(args, "--role="+owner)
	}
	path, _ := p.files.Path(db.Entry)
	return run(p.srv.command(ctx, p.srv.pgRest, append(args, path)...), fmt.Sprintf("pg_restore %s into %s", db.Name, name))
}

// read returns a (small) entry's content.
func (p *Plan) read(name string) (string, error) {
	path, ok := p.files.Path(name)
	if !ok {
		return "", fmt.Errorf("%w: no entry %s", archive.ErrIncomplete, name)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	return string(data), nil
}

// undo drops the databases and then the roles a failed Apply made.
func (p *Plan) undo(ctx context.Context, dbs, roles []string) error {
	var errs []error
	for _, db := range slices.Backward(dbs) {
		if _, err := p.lock.Exec(ctx, `DROP DATABASE IF EXISTS `+ident(db)+` WITH (FORCE)`); err != nil {
			errs = append(errs, fmt.Errorf("drop database %s: %w", db, err))
		}
	}
	for _, role := range roles {
		if _, err := p.lock.Exec(ctx, `DROP ROLE IF EXISTS `+ident(role)); err != nil {
			errs = append(errs, fmt.Errorf("drop role %s: %w", role, err))
		}
	}
	return errors.Join(errs...)
}

// Close releases the restore lock and removes the archive's files.
func (p *Plan) Close() {
	if p.lock != nil {
		// Closing the session releases its advisory lock.
		p.lock.Close(context.Background())
		p.lock = nil
	}
	if p.dir != "" {
		os.RemoveAll(p.dir)
		p.dir = ""
	}
}
