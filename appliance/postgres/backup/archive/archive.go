// Package archive is the file format of a Flynn cluster backup: a tar
// archive that says what it is in its first entry, carries the backed-up
// files, and ends with a manifest of their sizes and SHA-256 sums.
//
//	flynn-backup.json        Header: format "flynn-backup", version, created_at
//	roles.sql                the entries, in any order, each named once
//	databases/<name>.dump
//	resources/<resource id>  the data of a resource of another provider
//	                         (a Redis server's), added by the controller
//	…
//	manifest.json            Manifest: every entry's name, size and sha256,
//	                         and the databases the dumps hold
//
// The manifest comes last so that a writer can stream each entry as soon
// as it has it (a tar header needs the entry's size, not the whole
// archive), and the header first so that a reader can refuse a foreign
// file at once. A reader knows the archive is whole only at its end: Read
// checks every entry against the manifest (none missing, none extra,
// sizes and sums equal) and returns an error wrapping ErrNotBackup,
// ErrIncomplete, ErrCorrupt or ErrNewerVersion for anything else, so a
// restore can verify an archive completely before it changes anything.
// A gzip-compressed archive (backup.tar.gz) reads the same.
//
// The package imports only the standard library: the CLI verifies
// archives with it, the Postgres appliance writes and reads them.
package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// Names, format and version of the archive.
const (
	// HeaderName is the first entry: a Header.
	HeaderName = "flynn-backup.json"
	// ManifestName is the last entry: a Manifest.
	ManifestName = "manifest.json"
	// Format is Header.Format.
	Format = "flynn-backup"
	// Version is the version this package writes and the newest it reads.
	Version = 1
	// RolesName is the entry of the appliance's roles (see
	// appliance/postgres/backup).
	RolesName = "roles.sql"
	// ResourcePrefix begins the names of the entries that hold the data
	// of resources of providers other than Postgres (see ResourceEntry).
	ResourcePrefix = "resources/"
)

// ResourceEntry names the entry of the data of resource id (the
// controller's id of it).
func ResourceEntry(id string) string { return ResourcePrefix + id }

// Bounds of the JSON entries, far above what they hold, so that a foreign
// file cannot make a reader buffer much.
const (
	maxHeaderSize   = 64 << 10
	maxManifestSize = 16 << 20
	maxEntries      = 100000
)

// The kinds of failure of Read, which the errors it returns wrap; test for
// them with errors.Is.
var (
	// ErrNotBackup: the file is no Flynn backup (not a tar archive, or one
	// that does not start with HeaderName).
	ErrNotBackup = errors.New("not a Flynn backup")
	// ErrIncomplete: the archive ends early (a truncated download), lacks
	// its manifest or an entry the manifest lists.
	ErrIncomplete = errors.New("incomplete backup")
	// ErrCorrupt: an entry differs from the manifest (size or SHA-256), or
	// the archive holds what the manifest does not list.
	ErrCorrupt = errors.New("corrupt backup")
	// ErrNewerVersion: the archive was written by a newer Flynn, in a
	// version this one cannot read.
	ErrNewerVersion = errors.New("backup from a newer version of Flynn")
)

// Header is the first entry, which says what the file is.
type Header struct {
	// Format is always Format.
	Format string `json:"format"`
	// Version is the archive version (Version when written by this
	// package).
	Version int `json:"version"`
	// CreatedAt is when the backup started.
	CreatedAt time.Time `json:"created_at"`
}

// Manifest is the last entry: what the archive holds.
type Manifest struct {
	// Entries lists every entry but the header and the manifest, in the
	// order they were written.
	Entries []Entry `json:"entries"`
	// Databases describes the database dumps among the entries.
	Databases []Database `json:"databases"`
}

// Entry is one file of the archive.
type Entry struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// SHA256 is the hex SHA-256 of the content.
	SHA256 string `json:"sha256"`
}

// Kinds of database, which a restore treats differently (see
// appliance/postgres/backup).
const (
	// KindApp is an app's database (a resource of the Postgres provider).
	KindApp = "app"
	// KindController is the controller's database.
	KindController = "controller"
	// KindBlobstore is the blobstore's database.
	KindBlobstore = "blobstore"
)

// Database is a database whose dump (pg_dump --format=custom) is an entry.
type Database struct {
	Name string `json:"name"`
	// Kind is KindApp, KindController or KindBlobstore.
	Kind string `json:"kind"`
	// Owner is the role that owned the database.
	Owner string `json:"owner"`
	// Entry names the entry of the dump.
	Entry string `json:"entry"`
}

// Entry returns the entry named name and whether there is one.
func (m *Manifest) Entry(name string) (Entry, bool) {
	for _, e := range m.Entries {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}

// Writer writes an archive: NewWriter writes the header, Add each entry,
// Close the manifest and the end of the tar archive. An archive whose
// Close was never called is incomplete, and readers refuse it.
type Writer struct {
	tw      *tar.Writer
	created time.Time
	entries []Entry
	names   map[string]bool
}

// NewWriter starts an archive on w created at created.
func NewWriter(w io.Writer, created time.Time) (*Writer, error) {
	aw := &Writer{tw: tar.NewWriter(w), created: created.UTC(), names: map[string]bool{}}
	data, err := json.Marshal(Header{Format: Format, Version: Version, CreatedAt: aw.created})
	if err != nil {
		return nil, err
	}
	if err := aw.writeFile(HeaderName, int64(len(data)), bytes.NewReader(data)); err != nil {
		return nil, err
	}
	return aw, nil
}

// Add writes an entry of size bytes read from r; r must hold at least
// that many.
func (w *Writer) Add(name string, size int64, r io.Reader) error {
	if name == "" || name == HeaderName || name == ManifestName || w.names[name] {
		return fmt.Errorf("archive: entry name %q is reserved or taken", name)
	}
	h := sha256.New()
	if err := w.writeFile(name, size, io.TeeReader(r, h)); err != nil {
		return err
	}
	w.names[name] = true
	w.entries = append(w.entries, Entry{Name: name, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

// Entries returns the entries added so far.
func (w *Writer) Entries() []Entry { return append([]Entry(nil), w.entries...) }

// Forward returns a Sink that adds each entry it is given to w as it
// comes, so that an archive read with it (see Read) is copied into w entry
// by entry; w's own entries may follow, and w's manifest lists them all.
// What Read has not verified yet is already written to w: a caller whose
// Read fails must not Close w, which leaves the copy without a manifest
// and so refused by every reader.
func (w *Writer) Forward() Sink { return forward{w} }

type forward struct{ w *Writer }

func (f forward) Create(name string, size int64) (io.WriteCloser, error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := f.w.Add(name, size, pr)
		pr.CloseWithError(err) // a writer still writing learns why
		done <- err
	}()
	return &forwardEntry{pw: pw, done: done}, nil
}

// forwardEntry feeds one entry to Writer.Add, which runs until the entry's
// size is read or the pipe closes.
type forwardEntry struct {
	pw   *io.PipeWriter
	done chan error
}

func (e *forwardEntry) Write(p []byte) (int, error) { return e.pw.Write(p) }

func (e *forwardEntry) Close() error {
	_ = e.pw.Close()
	return <-e.done
}

// Close writes the manifest, listing the entries added and databases, and
// ends the archive. It does not close the underlying writer.
func (w *Writer) Close(databases []Database) error {
	for _, db := range databases {
		if !w.names[db.Entry] {
			return fmt.Errorf("archive: database %q names entry %q, which was not added", db.Name, db.Entry)
		}
	}
	if databases == nil {
		databases = []Database{}
	}
	entries := w.entries
	if entries == nil {
		entries = []Entry{}
	}
	data, err := json.Marshal(Manifest{Entries: entries, Databases: databases})
	if err != nil {
		return err
	}
	if err := w.writeFile(ManifestName, int64(len(data)), bytes.NewReader(data)); err != nil {
		return err
	}
	return w.tw.Close()
}

func (w *Writer) writeFile(name string, size int64, r io.Reader) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: w.created, Format: tar.FormatPAX}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive: write %s: %w", name, err)
	}
	n, err := io.CopyN(w.tw, r, size)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("archive: write %s: its source ended after %d of %d bytes", name, n, size)
		}
		return fmt.Errorf("archive: write %s: %w", name, err)
	}
	return nil
}

// Sink receives the content of each entry Read verifies: Create returns
// where the entry's bytes go (size of them, as the archive says). Read
// calls it once per entry, in the order of the archive, and finishes with
// one entry before it starts the next.
type Sink interface {
	Create(name string, size int64) (io.WriteCloser, error)
}

// Discard is the Sink that keeps nothing: Read with it only verifies.
var Discard Sink = discard{}

type discard struct{}

func (discard) Create(string, int64) (io.WriteCloser, error) { return nopCloser{io.Discard}, nil }

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// Read reads a whole archive from r, handing each entry's content to sink,
// and verifies it: the header first, a manifest last, every entry the
// manifest lists present once with its size and SHA-256, nothing else. The
// sink has received content that is not yet verified until Read returns
// nil: a caller must not act on any of it before.
func Read(r io.Reader, sink Sink) (*Header, *Manifest, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if len(magic) == 0 {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%w: the file is empty", ErrNotBackup)
		}
		return nil, nil, fmt.Errorf("read backup: %w", err)
	}
	var in io.Reader = br
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: a broken gzip stream: %v", ErrNotBackup, err)
		}
		defer zr.Close()
		in = zr
	}
	tr := tar.NewReader(in)
	hdr, err := readHeader(tr)
	if err != nil {
		return nil, nil, err
	}
	type seen struct {
		size int64
		sum  string
	}
	got := map[string]seen{}
	var order []string
	for {
		th, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%w: the archive ends without its manifest (%s): truncated, or not written to the end", ErrIncomplete, ManifestName)
		}
		if err != nil {
			return nil, nil, readError(err, "after "+lastOr(order, HeaderName))
		}
		if th.Typeflag != tar.TypeReg {
			return nil, nil, fmt.Errorf("%w: entry %q is not a regular file", ErrCorrupt, th.Name)
		}
		if th.Name == ManifestName {
			m, err := readManifest(tr, th)
			if err != nil {
				return nil, nil, err
			}
			if err := checkEnd(tr); err != nil {
				return nil, nil, err
			}
			for _, e := range m.Entries {
				s, ok := got[e.Name]
				switch {
				case !ok:
					return nil, nil, fmt.Errorf("%w: entry %q, which the manifest lists, is missing", ErrIncomplete, e.Name)
				case s.size != e.Size:
					return nil, nil, fmt.Errorf("%w: entry %q has %d bytes, the manifest says %d", ErrCorrupt, e.Name, s.size, e.Size)
				case s.sum != e.SHA256:
					return nil, nil, fmt.Errorf("%w: entry %q does not match its SHA-256 in the manifest", ErrCorrupt, e.Name)
				}
				delete(got, e.Name)
			}
			for _, name := range order {
				if _, extra := got[name]; extra {
					return nil, nil, fmt.Errorf("%w: entry %q is not in the manifest", ErrCorrupt, name)
				}
			}
			return hdr, m, nil
		}
		if th.Name == HeaderName || th.Name == "" {
			return nil, nil, fmt.Errorf("%w: entry %q comes twice or has no name", ErrCorrupt, th.Name)
		}
		if _, dup := got[th.Name]; dup {
			return nil, nil, fmt.Errorf("%w: entry %q comes twice", ErrCorrupt, th.Name)
		}
		if len(order) >= maxEntries {
			return nil, nil, fmt.Errorf("%w: more than %d entries", ErrCorrupt, maxEntries)
		}
		size, sum, err := copyEntry(tr, th, sink)
		if err != nil {
			return nil, nil, err
		}
		got[th.Name] = seen{size, sum}
		order = append(order, th.Name)
	}
}

// readHeader reads and checks the first entry.
func readHeader(tr *tar.Reader) (*Header, error) {
	th, err := tr.Next()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: an empty tar archive", ErrNotBackup)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: not a tar archive (%v)", ErrNotBackup, err)
	}
	if th.Name != HeaderName {
		return nil, fmt.Errorf("%w: a tar archive whose first entry is %q, not %s", ErrNotBackup, th.Name, HeaderName)
	}
	if th.Size > maxHeaderSize {
		return nil, fmt.Errorf("%w: %s is %d bytes", ErrNotBackup, HeaderName, th.Size)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return nil, readError(err, fmt.Sprintf("in %q", HeaderName))
	}
	var h Header
	if err := json.Unmarshal(data, &h); err != nil || h.Format != Format {
		return nil, fmt.Errorf("%w: %s does not name the format %q", ErrNotBackup, HeaderName, Format)
	}
	if h.Version > Version {
		return nil, fmt.Errorf("%w: archive version %d, and this Flynn reads up to %d", ErrNewerVersion, h.Version, Version)
	}
	if h.Version < 1 {
		return nil, fmt.Errorf("%w: archive version %d", ErrNotBackup, h.Version)
	}
	return &h, nil
}

func readManifest(tr *tar.Reader, th *tar.Header) (*Manifest, error) {
	if th.Size > maxManifestSize {
		return nil, fmt.Errorf("%w: %s is %d bytes", ErrCorrupt, ManifestName, th.Size)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return nil, readError(err, fmt.Sprintf("in %q", ManifestName))
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: unreadable %s: %v", ErrCorrupt, ManifestName, err)
	}
	names := map[string]bool{}
	for _, e := range m.Entries {
		if names[e.Name] {
			return nil, fmt.Errorf("%w: the manifest lists %q twice", ErrCorrupt, e.Name)
		}
		names[e.Name] = true
	}
	for _, db := range m.Databases {
		if !names[db.Entry] {
			return nil, fmt.Errorf("%w: the manifest's database %q names entry %q, which it does not list", ErrCorrupt, db.Name, db.Entry)
		}
	}
	return &m, nil
}

// checkEnd wants nothing after the manifest but the end of the archive
// (which a stream cut right after the manifest may lack: everything is
// there, so that is no error).
func checkEnd(tr *tar.Reader) error {
	th, err := tr.Next()
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return readError(err, fmt.Sprintf("after %q", ManifestName))
	}
	return fmt.Errorf("%w: entry %q follows the manifest", ErrCorrupt, th.Name)
}

// copyEntry streams one entry into sink, counting and hashing it.
func copyEntry(tr *tar.Reader, th *tar.Header, sink Sink) (int64, string, error) {
	w, err := sink.Create(th.Name, th.Size)
	if err != nil {
		return 0, "", fmt.Errorf("keep entry %q: %w", th.Name, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), &readErrReader{r: tr})
	cerr := w.Close()
	var re *readErr
	if errors.As(err, &re) {
		return 0, "", readError(re.err, fmt.Sprintf("in entry %q after %d of its %d bytes", th.Name, n, th.Size))
	}
	if err != nil {
		return 0, "", fmt.Errorf("keep entry %q: %w", th.Name, err)
	}
	if cerr != nil {
		return 0, "", fmt.Errorf("keep entry %q: %w", th.Name, cerr)
	}
	return n, sum(h), nil
}

func sum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// readErr marks an error of the archive's reader, as opposed to the
// sink's, in what io.Copy returns.
type readErr struct{ err error }

func (e *readErr) Error() string { return e.err.Error() }

type readErrReader struct{ r io.Reader }

func (r *readErrReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = &readErr{err}
	}
	return n, err
}

// readError classifies a failure to read the archive at where.
func readError(err error, where string) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the archive ends %s (truncated?)", ErrIncomplete, where)
	}
	if errors.Is(err, tar.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) {
		return fmt.Errorf("%w: unreadable %s: %v", ErrCorrupt, where, err)
	}
	return fmt.Errorf("read backup %s: %w", where, err)
}

// lastOr returns the last of names, quoted, or def when there is none.
func lastOr(names []string, def string) string {
	if len(names) == 0 {
		return fmt.Sprintf("%q", def)
	}
	return fmt.Sprintf("%q", names[len(names)-1])
}
