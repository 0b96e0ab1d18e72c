// Package logbuf keeps a job's output on disk in a bounded ring of segment
// files, stdout and stderr apart, readable with a tail and followable while
// the job runs and after it ended (and after the daemon restarted).
//
// A log is a directory of numbered segments ("00000001.log", …). The writer
// appends to the newest; when it grows past the segment size a new one is
// started and the one before the previous is deleted, so a log never holds
// more than two segments. Each record is one line:
//
//	<stream o|e><newline n|p> <RFC 3339 time> <data without its newline>
//
// where n means the data ended with a newline and p means it did not.
package logbuf

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openflynn/flynn/host"
)

// DefaultSegmentSize bounds one segment; a log holds at most two.
const DefaultSegmentSize = 4 << 20

// MaxLine is the longest line kept: a longer one is split into lines of
// MaxLine bytes without a newline, as Docker splits what a job writes, so
// that a record, and the memory of everyone who reads or writes one, stays
// bounded whatever the job writes.
const MaxLine = 16 << 10

// Log is one job's log. Writes come from one goroutine (the daemon's log
// pump); reads may come from many.
type Log struct {
	dir     string
	segSize int64

	mu       sync.Mutex
	f        *os.File
	seg      int
	size     int64
	last     time.Time
	finished bool
	notify   chan struct{} // closed and replaced on every write and on Finish
}

// Open opens (creating when needed) the log in dir. segmentSize 0 means
// DefaultSegmentSize.
func Open(dir string, segmentSize int64) (*Log, error) {
	if segmentSize <= 0 {
		segmentSize = DefaultSegmentSize
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	l := &Log{dir: dir, segSize: segmentSize, notify: make(chan struct{})}
	segs, err := l.segments()
	if err != nil {
		return nil, err
	}
	if len(segs) > 0 {
		l.seg = segs[len(segs)-1]
		l.last = l.lastTime()
	}
	return l, nil
}

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }

func (l *Log) segPath(n int) string { return filepath.Join(l.dir, fmt.Sprintf("%08d.log", n)) }

func (l *Log) segments() ([]int, error) {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("read log dir: %w", err)
	}
	var segs []int
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(name); err == nil {
			segs = append(segs, n)
		}
	}
	sort.Ints(segs)
	return segs, nil
}

// lastTime finds the newest record's time, so a re-attached pump can skip
// what was already written.
func (l *Log) lastTime() time.Time {
	var last time.Time
	_ = l.scanFile(l.seg, 0, func(r record, _ int64) error {
		last = r.Time
		return nil
	})
	return last
}

// LastTime returns the time of the newest record written.
func (l *Log) LastTime() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Write appends line, split at newlines.
func (l *Log) Write(line host.LogLine) error {
	var buf bytes.Buffer
	data := line.Data
	for len(data) > 0 {
		chunk, rest, nl := data, "", false
		if i := strings.IndexByte(data, '\n'); i >= 0 {
			chunk, rest, nl = data[:i], data[i+1:], true
		}
		if len(chunk) > MaxLine {
			chunk, rest, nl = chunk[:MaxLine], data[MaxLine:], false
		}
		encode(&buf, record{LogLine: line, partial: !nl}, chunk)
		data = rest
	}
	if buf.Len() == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.finished {
		return errors.New("logbuf: write after finish")
	}
	if l.f == nil || l.size >= l.segSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(buf.Bytes())
	l.size += int64(n)
	if line.Time.After(l.last) {
		l.last = line.Time
	}
	close(l.notify)
	l.notify = make(chan struct{})
	if err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	return nil
}

// rotate opens the segment to write: the current one if it has room (after
// a restart), else a new one, deleting the one before the previous.
func (l *Log) rotate() error {
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
	if l.seg == 0 {
		l.seg = 1
	} else if st, err := os.Stat(l.segPath(l.seg)); err == nil && st.Size() < l.segSize {
		l.size = st.Size()
	} else {
		l.seg++
		l.size = 0
		_ = os.Remove(l.segPath(l.seg - 2))
	}
	f, err := os.OpenFile(l.segPath(l.seg), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open log segment: %w", err)
	}
	if st, err := f.Stat(); err == nil {
		l.size = st.Size()
	}
	l.f = f
	return nil
}

// Finish marks the log complete: followers stop at its end.
func (l *Log) Finish() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.finished {
		return nil
	}
	l.finished = true
	close(l.notify)
	if l.f != nil {
		err := l.f.Close()
		l.f = nil
		return err
	}
	return nil
}

// Remove finishes the log and deletes its files.
func (l *Log) Remove() error {
	_ = l.Finish()
	return os.RemoveAll(l.dir)
}

// ReadOptions select what Read returns.
type ReadOptions struct {
	// Tail returns only the last Tail lines; 0 or less returns everything.
	Tail int
	// Stream keeps only host.StreamStdout or host.StreamStderr; empty keeps both.
	Stream string
	// Follow keeps reading new lines until the log is finished or ctx ends.
	Follow bool
}

// Read calls fn with each selected line, oldest first.
func (l *Log) Read(ctx context.Context, opts ReadOptions, fn func(host.LogLine) error) error {
	keep := func(r record) bool { return opts.Stream == "" || r.Stream == opts.Stream }
	segs, err := l.segments()
	if err != nil {
		return err
	}
	// First pass: everything on disk now, kept in a ring when tailing.
	var (
		ring    []host.LogLine
		seg     int
		off     int64
		emitAll = opts.Tail <= 0
	)
	for _, s := range segs {
		seg, off = s, 0
		err := l.scanFile(s, 0, func(r record, end int64) error {
			off = end
			if !keep(r) {
				return nil
			}
			if emitAll {
				return fn(r.LogLine)
			}
			ring = append(ring, r.LogLine)
			if len(ring) > opts.Tail {
				ring = ring[1:]
			}
			return nil
		})
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // rotated away while we read
			}
			return err
		}
	}
	for _, line := range ring {
		if err := fn(line); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	if seg == 0 {
		seg = 1
	}
	for {
		l.mu.Lock()
		wait, finished := l.notify, l.finished
		l.mu.Unlock()
		err := l.scanFile(seg, off, func(r record, end int64) error {
			off = end
			if keep(r) {
				return fn(r.LogLine)
			}
			return nil
		})
		switch {
		case errors.Is(err, os.ErrNotExist):
			// Our segment was rotated away (we lagged): go on with the oldest left.
			if segs, _ := l.segments(); len(segs) > 0 && segs[0] > seg {
				seg, off = segs[0], 0
				continue
			}
		case err != nil:
			return err
		}
		if _, err := os.Stat(l.segPath(seg + 1)); err == nil {
			seg, off = seg+1, 0
			continue
		}
		if finished {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wait:
		}
	}
}

// scanFile calls fn with each complete record of segment n from offset on,
// with the offset just past it.
func (l *Log) scanFile(n int, offset int64, fn func(record, int64) error) error {
	f, err := os.Open(l.segPath(n))
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	pos := offset
	for {
		b, err := br.ReadBytes('\n')
		if err != nil {
			return nil // EOF, or a record still being written: stop before it
		}
		pos += int64(len(b))
		r, ok := decode(b[:len(b)-1])
		if !ok {
			continue
		}
		if err := fn(r, pos); err != nil {
			return err
		}
	}
}

type record struct {
	host.LogLine
	partial bool
}

func encode(buf *bytes.Buffer, r record, data string) {
	s, nl := byte('o'), byte('n')
	if r.Stream == host.StreamStderr {
		s = 'e'
	}
	if r.partial {
		nl = 'p'
	}
	buf.WriteByte(s)
	buf.WriteByte(nl)
	buf.WriteByte(' ')
	buf.WriteString(r.Time.UTC().Format(time.RFC3339Nano))
	buf.WriteByte(' ')
	buf.WriteString(data)
	buf.WriteByte('\n')
}

func decode(b []byte) (record, bool) {
	if len(b) < 4 || b[2] != ' ' {
		return record{}, false
	}
	rest := b[3:]
	i := bytes.IndexByte(rest, ' ')
	if i < 0 {
		return record{}, false
	}
	ts, err := time.Parse(time.RFC3339Nano, string(rest[:i]))
	if err != nil {
		return record{}, false
	}
	r := record{LogLine: host.LogLine{Stream: host.StreamStdout, Time: ts, Data: string(rest[i+1:])}}
	if b[0] == 'e' {
		r.Stream = host.StreamStderr
	}
	if b[1] == 'p' {
		r.partial = true
	} else {
		r.Data += "\n"
	}
	return r, true
}
