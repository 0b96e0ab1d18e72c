package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/terminal"
)

// The postgres tools run as one-off jobs of the user's app, so that they
// get its release's env (DATABASE_URL and the PG* variables the postgres
// provider sets, which libpq reads) and run where its jobs run: on the app
// network as the unprivileged user, reaching the database through the
// router like the app does. Only the image is not the app's: it is the
// current artifact of the system app postgresToolsApp, whose image holds
// psql, pg_dump and pg_restore but whose entrypoint is the provider, hence
// the entrypoint each command sets.
const (
	postgresToolsApp = "postgres-api"
	postgresProvider = "postgres"
)

// pgDumpArgs make an archive any app's database can take: pg_restore's
// custom format (compressed, restorable object by object), without the
// owner and grants, which name the dumped app's database user.
func pgDumpArgs() []string { return []string{"--format=custom", "--no-owner", "--no-acl"} }

// pgRestoreScript restores the archive on stdin into the app's database.
// pg_restore needs the target named, and only a shell can read it from
// the env: the release's PGDATABASE (the rest of the connection comes from
// PGHOST, PGUSER… as for psql and pg_dump). --clean --if-exists replaces
// what the archive holds; --single-transaction (which implies
// --exit-on-error) makes the restore all or nothing, so that a truncated
// archive, found only once its objects were already dropped, leaves the
// database as it was.
const pgRestoreScript = `exec pg_restore --clean --if-exists --no-owner --no-acl --single-transaction --dbname="${PGDATABASE:?the app has no PGDATABASE: flynn resource add postgres}"`

// pgArchiveMagic opens every archive pg_dump writes in the custom format.
const pgArchiveMagic = "PGDMP"

func (r *runner) pgCommand() *urfave.Command {
	flags := func(extra ...urfave.Flag) []urfave.Flag {
		return append(append([]urfave.Flag{appFlag()}, extra...), systemFlags()...)
	}
	fileFlag := func(usage string) urfave.Flag {
		return &urfave.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: usage}
	}
	return &urfave.Command{
		Name:  "pg",
		Usage: "work with the app's Postgres database",
		Description: `Runs the Postgres tools against the database that "flynn resource add
postgres" gave the app, as one-off jobs of the app: they connect as the app
does, with its DATABASE_URL and PG* variables.

Example:
   flynn -a example pg psql
   flynn -a example pg dump -f example.dump
   flynn -a copy pg restore -f example.dump`,
		Subcommands: []*urfave.Command{
			{
				Name:      "psql",
				Usage:     "open psql on the app's database",
				ArgsUsage: "[-- PSQL_ARG…]",
				Description: `Runs psql attached to your terminal, with a TTY when stdin is a terminal;
its exit status is flynn's. Arguments after "--" go to psql.

Example:
   flynn -a example pg psql
   flynn -a example pg psql -- -c 'select count(*) from users'
   flynn -a example pg psql -T < migration.sql`,
				Flags:  flags(&urfave.BoolFlag{Name: "no-tty", Aliases: []string{"T"}, Usage: "no TTY even when stdin is a terminal"}),
				Action: r.pgPsql,
			},
			{
				Name:  "dump",
				Usage: "dump the app's database to a file",
				Description: `Runs pg_dump --format=custom --no-owner --no-acl and streams the archive to
FILE (mode 0600: it holds the app's data), or to stdout with "-f -" or
when -f is not given and stdout is not a terminal. The archive is written
to a temporary file next to FILE and renamed once pg_dump has succeeded:
a failed dump leaves no partial file and any old FILE as it was, and exits
non-zero after pg_dump's error.

Example:
   flynn -a example pg dump -f example.dump
   flynn -a example pg dump | gzip > example.dump.gz`,
				Flags:  flags(fileFlag("write the archive to `FILE` (\"-\": stdout)")),
				Action: r.pgDump,
			},
			{
				Name:  "restore",
				Usage: "restore a dump into the app's database",
				Description: `Streams the archive FILE (from "flynn pg dump", pg_dump's custom format),
or stdin with "-f -" or when -f is not given and stdin is not a terminal,
into pg_restore --clean --if-exists --no-owner --no-acl --single-transaction:
the objects the archive holds replace those of the app's database, all or
nothing (a failed restore leaves the database as it was). From a terminal
it asks for the app's name first, unless --yes is given. pg_restore's exit
status is flynn's.

Example:
   flynn -a example pg restore -f example.dump
   gunzip < example.dump.gz | flynn -a example pg restore`,
				Flags: flags(
					fileFlag("read the archive from `FILE` (\"-\": stdin)"),
					&urfave.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation"},
				),
				Action: r.pgRestore,
			},
		},
	}
}

// pgJob is what the three commands share: the app, checked to have a
// postgres database, and a one-off job of it from the postgres tools'
// image, still to be given its entrypoint and args.
func (r *runner) pgJob(c *urfave.Context) (*client.Client, *controller.App, *controller.NewJob, error) {
	api, app, err := r.changeApp(c)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := hasPostgres(c.Context, api, app); err != nil {
		return nil, nil, nil, err
	}
	artifact, err := postgresTools(c.Context, api)
	if err != nil {
		return nil, nil, nil, err
	}
	return api, app, &controller.NewJob{ArtifactID: artifact}, nil
}

// hasPostgres checks that a resource of the postgres provider is attached
// to app, so that a missing database is named as such rather than as
// psql's failure to connect to a local socket.
func hasPostgres(ctx context.Context, api *client.Client, app *controller.App) error {
	missing := fmt.Errorf("app %s has no postgres database: flynn -a %s resource add %s", app.Name, app.Name, postgresProvider)
	provider, err := api.Provider(ctx, postgresProvider)
	if httpjson.IsNotFound(err) {
		return missing
	}
	if err != nil {
		return fmt.Errorf("postgres provider: %w", err)
	}
	resources, err := api.AppResources(ctx, app.ID)
	if err != nil {
		return fmt.Errorf("resources of %s: %w", app.Name, err)
	}
	for _, res := range resources {
		if res.ProviderID == provider.ID {
			return nil
		}
	}
	return missing
}

// postgresTools returns the id of the artifact that holds the postgres
// tools: the current one of the system app postgresToolsApp, so that the
// tools are those of the cluster's Postgres version.
func postgresTools(ctx context.Context, api *client.Client) (string, error) {
	rel, err := api.AppRelease(ctx, postgresToolsApp)
	if httpjson.IsNotFound(err) {
		return "", fmt.Errorf("the cluster has no %s app with a release, whose image holds the postgres tools", postgresToolsApp)
	}
	if err != nil {
		return "", fmt.Errorf("release of %s (the postgres tools): %w", postgresToolsApp, err)
	}
	if rel.ArtifactID == "" {
		return "", fmt.Errorf("the release of %s holds no image, so there are no postgres tools to run", postgresToolsApp)
	}
	return rel.ArtifactID, nil
}

func (r *runner) pgPsql(c *urfave.Context) error {
	api, app, req, err := r.pgJob(c)
	if err != nil {
		return err
	}
	req.Entrypoint, req.Args = []string{"psql"}, c.Args().Slice()
	tty := r.env.Terminal
	if c.Bool("no-tty") {
		tty = nil
	}
	status, err := runAttached(c.Context, api, app.ID, req, tty, r.env.Stdin, r.env.Stdout, r.env.Stderr)
	if err != nil {
		return err
	}
	if status != 0 {
		return &exitStatusError{status: exitCode(status)}
	}
	return nil
}

func (r *runner) pgDump(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "takes no arguments; name the file with -f")
	}
	path := c.String("file")
	toStdout := path == "-" || path == ""
	if path == "" && isTerminal(r.env.Stdout) {
		return usageError(c, "will not write a binary archive to a terminal; give -f FILE or redirect stdout")
	}
	api, app, req, err := r.pgJob(c)
	if err != nil {
		return err
	}
	req.Entrypoint, req.Args = []string{"pg_dump"}, pgDumpArgs()
	if toStdout {
		return dumpTo(c.Context, api, app.ID, req, r.env.Stdout, r.env.Stderr)
	}
	path = r.path(path)
	// Next to the target, so that the rename is atomic (one filesystem);
	// CreateTemp makes it 0600.
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := dumpTo(c.Context, api, app.ID, req, tmp, r.env.Stderr); err != nil {
		return fmt.Errorf("%w; %s not written", err, path)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	done = true
	return nil
}

// dumpTo runs the pg_dump job req without a TTY, which would merge its
// stderr into the archive and mangle bytes, and streams its stdout to w
// frame by frame as it comes: nothing holds more than one frame of the
// archive. pg_dump's stderr (its progress and errors) goes to stderr,
// and a failure ends with a line of ours after it.
func dumpTo(ctx context.Context, api *client.Client, app string, req *controller.NewJob, w, stderr io.Writer) error {
	status, err := runAttached(ctx, api, app, req, nil, strings.NewReader(""), w, stderr)
	if err != nil {
		return err
	}
	if status != 0 {
		return fmt.Errorf("pg_dump exited with status %d", status)
	}
	return nil
}

func (r *runner) pgRestore(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "takes no arguments; name the file with -f")
	}
	path := c.String("file")
	fromStdin := path == "-" || path == ""
	if path == "" && r.env.Terminal != nil {
		return usageError(c, "give the archive with -f FILE or on stdin")
	}
	var in io.Reader = r.env.Stdin
	name := "stdin"
	if !fromStdin {
		f, err := os.Open(r.path(path))
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		// Closed under the input copy if the job ends first: its next read
		// fails and it stops.
		defer f.Close()
		in, name = f, path
	}
	// A file that is not an archive is refused before anything starts;
	// pg_restore would refuse it too, but only from inside a job.
	archive := bufio.NewReaderSize(in, 64<<10)
	magic, err := archive.Peek(len(pgArchiveMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("restore: read %s: %w", name, err)
	}
	if string(magic) != pgArchiveMagic {
		return fmt.Errorf("%s is not a pg_dump archive in the custom format (what flynn pg dump writes)", name)
	}
	api, app, req, err := r.pgJob(c)
	if err != nil {
		return err
	}
	if !c.Bool("yes") && r.env.Terminal != nil && !fromStdin {
		fmt.Fprintf(r.env.Stderr, "This replaces what %s holds in the database of app %s. Type the app's name to confirm: ", name, app.Name)
		answer, err := r.readLine()
		if err != nil {
			fmt.Fprintln(r.env.Stderr) // end the prompt's line
			return fmt.Errorf("no confirmation read (use --yes to skip it): %w", err)
		}
		if answer != app.Name {
			return fmt.Errorf("confirmation %q does not match %q; nothing restored", answer, app.Name)
		}
	}
	req.Entrypoint = []string{"/bin/sh", "-c", pgRestoreScript}
	status, err := runAttached(c.Context, api, app.ID, req, nil, archive, r.env.Stdout, r.env.Stderr)
	if err != nil {
		return err
	}
	if status != 0 {
		return &exitStatusError{status: exitCode(status)}
	}
	return nil
}

// path resolves a path the user gave against the working directory.
func (r *runner) path(p string) string {
	if filepath.IsAbs(p) || r.env.Dir == "" {
		return p
	}
	return filepath.Join(r.env.Dir, p)
}

// isTerminal reports whether w is a terminal: binary output must not go
// to one.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && terminal.New(f) != nil
}
