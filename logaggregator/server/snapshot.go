package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/openflynn/flynn/logaggregator"
)

// snapshotFile is the name, in the data directory, of the file holding
// every kept line, so the lines outlive the aggregator's restart.
const snapshotFile = "lines.ndjson"

// Save writes every kept line to dir, replacing the last snapshot at once
// (a crash while writing leaves the one before).
func (s *Store) Save(dir string) error {
	tmp, err := os.CreateTemp(dir, snapshotFile+".*")
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 256<<10)
	enc := json.NewEncoder(w)
	var encErr error
	s.each(func(l *logaggregator.Line) {
		if encErr == nil {
			encErr = enc.Encode(l)
		}
	})
	if encErr != nil {
		tmp.Close()
		return fmt.Errorf("snapshot: %w", encErr)
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, snapshotFile)); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// Load adds the lines of dir's snapshot, keeping their Seq; a missing
// snapshot loads nothing. A line that does not parse ends the load there
// (a snapshot cut short), keeping what came before.
func (s *Store) Load(dir string) (int, error) {
	f, err := os.Open(filepath.Join(dir, snapshotFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load snapshot: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxEncodedLine)
	var batch []logaggregator.Line
	n := 0
	for sc.Scan() {
		var l logaggregator.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			break
		}
		batch = append(batch, l)
		if len(batch) == 1024 {
			n += s.Append(batch)
			batch = batch[:0]
		}
	}
	n += s.Append(batch)
	return n, nil
}
