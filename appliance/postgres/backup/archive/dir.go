package archive

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Dir is a Sink that keeps each entry in a file of its own in a
// directory. The files are named by their order in the archive, never by
// the entry's name, which the archive's author chose.
type Dir struct {
	dir   string
	paths map[string]string
}

var _ Sink = (*Dir)(nil)

// NewDir returns a Dir that writes into dir, which must exist.
func NewDir(dir string) *Dir { return &Dir{dir: dir, paths: map[string]string{}} }

// Create makes the file of entry name.
func (d *Dir) Create(name string, _ int64) (io.WriteCloser, error) {
	path := filepath.Join(d.dir, fmt.Sprintf("entry-%06d", len(d.paths)))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	d.paths[name] = path
	return f, nil
}

// Path returns the file that holds entry name, and whether there is one.
func (d *Dir) Path(name string) (string, bool) {
	p, ok := d.paths[name]
	return p, ok
}
