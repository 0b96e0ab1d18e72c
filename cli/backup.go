package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	urfave "github.com/urfave/cli/v2"

	backuparchive "github.com/openflynn/flynn/appliance/postgres/backup/archive"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/iocount"
)

// Cluster backups (controller/server/backup.go): a tar archive of every
// database of the cluster's Postgres appliance, the controller's (apps,
// releases, routes, keys), the blobstore's (slugs) and the apps' own. The
// CLI verifies an archive whole (every entry there, sizes and SHA-256
// sums as its manifest says) after a download and before an upload, so a
// truncated file is caught on this side too. Both commands use the
// cluster key, whatever --system says: a backup holds every secret of the
// cluster.

func (r *runner) clusterBackupCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "backup",
		Usage:     "back up the cluster: apps, releases, routes, keys, slugs and app databases (Postgres and Redis)",
		ArgsUsage: " ",
		Description: `Streams a backup of the cluster to FILE, or to stdout (never to a terminal):
a tar archive of every database of its Postgres appliance. The archive is
checked as it arrives; an incomplete one is reported, and -f FILE is then
not written. Restore it with ` + "`flynn cluster restore`" + ` onto a fresh cluster.

It needs the cluster key, from $FLYNN_CLUSTER_KEY or --cluster-key-file:
the backup holds every secret of the cluster. Keep it as safe as the key.

Example:
   flynn cluster backup > backup.tar
   flynn -c production cluster backup -f production-$(date +%F).tar`,
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "write to `FILE` instead of stdout"},
		},
		Action: r.clusterBackup,
	}
}

func (r *runner) clusterRestoreCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "restore",
		Usage:     "bring a cluster backup back onto this (fresh) cluster",
		ArgsUsage: "FILE",
		Description: `Restores FILE, made by ` + "`flynn cluster backup`" + `, onto the cluster: the apps'
databases and roles (with their passwords, so the apps' DATABASE_URLs work
as before), the slugs, then every app with its releases, formations,
routes and resources, and the SSH and API keys; the scheduler then starts
the apps. Each Redis is made again with its password, port and keys, so
REDIS_URLs work as before too. The cluster must have no apps of its own. FILE is checked whole
before anything changes: a truncated or foreign file is refused. Asks you to
type the cluster's name to confirm, unless --yes.

It needs the cluster key, from $FLYNN_CLUSTER_KEY or --cluster-key-file.

Example:
   flynn -c fresh cluster restore backup.tar`,
		Flags: []urfave.Flag{
			&urfave.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation"},
			jsonFlag(),
		},
		Action: r.clusterRestore,
	}
}

// backupClient connects to the selected cluster and returns its name,
// controller URL and the cluster key.
func (r *runner) backupClient(c *urfave.Context, what string) (url, key string, err error) {
	key, err = r.clusterKey(c)
	if err != nil {
		return "", "", fmt.Errorf("%s needs the cluster key: set $FLYNN_CLUSTER_KEY or give --cluster-key-file FILE", what)
	}
	if _, err := r.connect(c); err != nil {
		return "", "", err
	}
	return strings.TrimRight(r.cluster.ControllerURL, "/"), key, nil
}

func (r *runner) clusterBackup(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "takes no arguments; name the file with -f")
	}
	path := c.String("file")
	if (path == "" || path == "-") && isTerminal(r.env.Stdout) {
		return usageError(c, "will not write a tar archive to a terminal; give -f FILE or redirect stdout")
	}
	base, key, err := r.backupClient(c, "a backup")
	if err != nil {
		return err
	}
	var out io.Writer = r.env.Stdout
	var tmp *os.File
	if path != "" && path != "-" {
		path = r.path(path)
		// Next to the target, so that the rename is atomic; CreateTemp
		// makes it 0600, which a backup's secrets call for.
		if tmp, err = os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.partial"); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		defer func() {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		out = tmp
	}
	req, err := http.NewRequestWithContext(c.Context, http.MethodGet, base+"/backup", nil)
	if err != nil {
		return err
	}
	authkey.Set(req, key)
	start := r.env.Now()
	resp, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpjson.ReadError(resp)
	}
	cw := &iocount.Writer{W: out}
	// Reading the archive to check it pulls it through to the file.
	_, m, verr := backuparchive.Read(io.TeeReader(resp.Body, cw), backuparchive.Discard)
	switch {
	case verr == nil:
		_, verr = io.Copy(cw, resp.Body)
	case isArchiveError(verr):
		// The cluster may have cut the archive short: its trailer says why.
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	if msg := resp.Trailer.Get(controller.BackupErrorTrailer); msg != "" {
		verr = fmt.Errorf("the cluster failed to make the backup: %s", msg)
	}
	if verr != nil {
		if tmp != nil {
			return fmt.Errorf("backup failed, %s not written: %w", path, verr)
		}
		return fmt.Errorf("backup failed, and what went to stdout is no usable backup: %w", verr)
	}
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		tmp = nil
	}
	where := "stdout"
	if path != "" && path != "-" {
		where = path
	}
	fmt.Fprintf(r.env.Stderr, "Backed up cluster %s to %s: %s, %d databases, in %s.\n",
		r.cluster.Name, where, byteSize(cw.N), len(m.Databases), r.env.Now().Sub(start).Round(100*time.Millisecond))
	return nil
}

func (r *runner) clusterRestore(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want FILE")
	}
	path := r.path(c.Args().First())
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	// Checked here first, so that a bad file is refused before it is
	// uploaded, and the prompt can say what it holds.
	hdr, m, err := backuparchive.Read(bufio.NewReaderSize(f, 1<<20), backuparchive.Discard)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Args().First(), err)
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	base, key, err := r.backupClient(c, "a restore")
	if err != nil {
		return err
	}
	name := r.cluster.Name
	if !c.Bool("yes") {
		fmt.Fprintf(r.env.Stderr, "This restores the backup of %s (%s, %d databases) onto cluster %s (%s): its apps come back there. Type the cluster's name to confirm: ",
			hdr.CreatedAt.UTC().Format("2006-01-02 15:04 MST"), byteSize(st.Size()), len(m.Databases), name, base)
		answer, err := r.readLine()
		if err != nil {
			fmt.Fprintln(r.env.Stderr)
			return fmt.Errorf("no confirmation read (use --yes to skip it): %w", err)
		}
		if answer != name {
			return fmt.Errorf("confirmation %q does not match %q; nothing restored", answer, name)
		}
	}
	req, err := http.NewRequestWithContext(c.Context, http.MethodPost, base+"/restore", f)
	if err != nil {
		return err
	}
	req.ContentLength = st.Size()
	req.Header.Set("Content-Type", "application/x-tar")
	authkey.Set(req, key)
	start := r.env.Now()
	resp, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpjson.ReadError(resp)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev controller.RestoreEvent
		if err := dec.Decode(&ev); err != nil {
			return fmt.Errorf("the cluster stopped answering in the middle of the restore (%v): check `flynn apps` and its logs", err)
		}
		switch {
		case ev.Error != "":
			return fmt.Errorf("restore failed: %s", ev.Error)
		case ev.Report != nil:
			if lookupBool(c, "json") {
				return writeJSON(r.env.Stdout, ev.Report)
			}
			printReport(r.env.Stdout, ev.Report, r.env.Now().Sub(start))
			return nil
		case ev.Progress != "":
			fmt.Fprintf(r.env.Stderr, "%s…\n", ev.Progress)
		}
	}
}

// printReport says what a restore brought back.
func printReport(w io.Writer, rep *controller.RestoreReport, took time.Duration) {
	list := func(names []string) string {
		if len(names) == 0 {
			return "none"
		}
		return strings.Join(names, ", ")
	}
	fmt.Fprintf(w, "Restored the backup of %s in %s.\n", rep.BackupCreatedAt.UTC().Format("2006-01-02 15:04 MST"), took.Round(100*time.Millisecond))
	fmt.Fprintf(w, "Apps (%d): %s\n", len(rep.Apps), list(rep.Apps))
	fmt.Fprintf(w, "Databases (%d): %s\n", len(rep.Databases), list(rep.Databases))
	fmt.Fprintf(w, "Also: %d releases, %d formations, %d routes, %d log drains, %d resources, %d SSH keys, %d API keys, %d slugs and other blobs.\n",
		rep.Releases, rep.Formations, rep.Routes, rep.LogDrains, rep.Resources, rep.Keys, rep.APIKeys, rep.BlobsAdded)
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
}

// isArchiveError reports whether err says the archive is bad, rather than
// that it could not be read or kept.
func isArchiveError(err error) bool {
	return errors.Is(err, backuparchive.ErrIncomplete) || errors.Is(err, backuparchive.ErrCorrupt) ||
		errors.Is(err, backuparchive.ErrNotBackup) || errors.Is(err, backuparchive.ErrNewerVersion)
}

// byteSize is a size for people: "12.3 MB".
func byteSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
