package docker

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/host/logbuf"
)

// Logs follows the container's output from since until it ends.
//
// Docker splits what a job writes into messages of at most 16 KiB (a line,
// or a piece of a longer one), and with timestamps sends each as
// "<RFC 3339 time> <data>", where data ends with a newline unless it is a
// piece. Without a terminal each message is one frame of the multiplexed
// stream; with one, messages follow each other on one raw stream. Either
// way a message becomes one LogLine of at most logbuf.MaxLine bytes, so
// that a job writing a gigabyte without a newline costs this process a
// few kilobytes.
func (b *Backend) Logs(ctx context.Context, id string, since time.Time, fn func(host.LogLine) error) error {
	info, err := b.c.ContainerInspect(ctx, id)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("%w: %s", daemon.ErrContainerNotFound, id)
		}
		return fmt.Errorf("inspect container: %w", err)
	}
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true, Timestamps: true}
	if !since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	followCtx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	rc, err := b.c.ContainerLogs(followCtx, id, opts)
	if err != nil {
		return fmt.Errorf("container logs: %w", err)
	}
	defer rc.Close()
	w := &stallWatch{path: info.LogPath, after: logStallAfter, every: logStallAfter / 3}
	w.received(since, false)
	watchDone := make(chan struct{})
	defer func() { <-watchDone }()
	defer stopFollow()
	go func() {
		defer close(watchDone)
		if w.run(followCtx) {
			stopFollow()
		}
	}()
	emit := func(l host.LogLine) error {
		w.received(l.Time, !strings.HasSuffix(l.Data, "\n"))
		if !since.IsZero() && !l.Time.After(since) {
			return nil // already recorded before a daemon restart
		}
		return fn(l)
	}
	stdout := &messageWriter{stream: host.StreamStdout, emit: emit}
	stderr := &messageWriter{stream: host.StreamStderr, emit: emit}
	if info.Config != nil && info.Config.Tty {
		_, err = io.Copy(stdout, rc)
		if ferr := stdout.flush(); err == nil {
			err = ferr
		}
	} else {
		err = demux(rc, func(stream byte, payload []byte) error {
			w := stdout
			if stream == streamStderr {
				w = stderr
			}
			if _, err := w.Write(payload); err != nil {
				return err
			}
			return w.flush()
		})
	}
	if ctx.Err() == nil && w.stalled.Load() {
		return fmt.Errorf("%w: docker's follower went silent behind %s", daemon.ErrLogStalled, info.LogPath)
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read container logs: %w", err)
	}
	return ctx.Err()
}

// logStallAfter is how long a follow may stay silent while the log file
// holds newer output before it is given up.
const logStallAfter = 3 * time.Second

// stallWatch notices Docker's json-file follower hanging, which Docker
// does (moby#37646 and its kin) when a flood rotates the log file under
// it: the follow stays open and says nothing more, so only the file
// itself tells. The follow is stalled when nothing has come for a while
// although the file's last message is one it has not delivered: a later
// one than the last it delivered, or the end of the line whose pieces it
// was delivering (Docker stamps every piece of a long line with the time
// of its first). The file is read only when it changed since it last
// showed nothing newer, so a quiet job costs a stat.
type stallWatch struct {
	path  string        // the container's json-file log; "" if Docker names none
	after time.Duration // silence, with the file newer, that makes a stall
	every time.Duration // how often the file is looked at

	mu          sync.Mutex
	lastWall    time.Time // when the last message came
	lastTime    time.Time // Docker's time of it
	lastPartial bool      // it did not end its line
	seen        fileState // the file when it last showed nothing newer
	stalled     atomic.Bool
}

// fileState is what stat says of a file that changes when it is written.
type fileState struct {
	size  int64
	mtime time.Time
}

// received notes a message the follow delivered: Docker's time of it, and
// whether its line goes on.
func (w *stallWatch) received(t time.Time, partial bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastWall, w.lastTime, w.lastPartial = time.Now(), t, partial
}

// run watches until ctx ends or the follow stalls, and reports a stall.
// A log file it cannot see or read (another driver, a remote engine) is no
// stall.
func (w *stallWatch) run(ctx context.Context) bool {
	if w.path == "" {
		return false
	}
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		w.mu.Lock()
		lastWall, lastTime, lastPartial, seen := w.lastWall, w.lastTime, w.lastPartial, w.seen
		w.mu.Unlock()
		if time.Since(lastWall) < w.after {
			continue
		}
		fi, err := os.Stat(w.path)
		if err != nil {
			continue
		}
		st := fileState{fi.Size(), fi.ModTime()}
		if st == seen {
			continue
		}
		fileTime, fileEnds, ok := lastMessage(w.path, fi.Size())
		if !ok {
			continue
		}
		if fileTime.After(lastTime) || fileTime.Equal(lastTime) && lastPartial && fileEnds {
			w.stalled.Store(true)
			return true
		}
		w.mu.Lock()
		w.seen = st
		w.mu.Unlock()
	}
}

// seenState is the file as it last showed nothing newer.
func (w *stallWatch) seenState() fileState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

// maxJSONMessage bounds a message of Docker's json-file log: 16 KiB of
// output, each byte at most six when escaped, and the fields around it.
const maxJSONMessage = 6*16<<10 + 1<<10

// lastMessage reads the last whole message of the json-file log at path
// (size bytes long): its time, and whether it ends its line. ok is false
// when there is none to read.
func lastMessage(path string, size int64) (t time.Time, endsLine, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, false, false
	}
	defer f.Close()
	off := max(0, size-2*maxJSONMessage)
	buf := make([]byte, size-off)
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return time.Time{}, false, false
	}
	buf = bytes.TrimRight(buf[:n], "\n")
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		buf = buf[i+1:]
	} else if off > 0 {
		return time.Time{}, false, false // no whole message in what was read
	}
	var m struct {
		Log  string    `json:"log"`
		Time time.Time `json:"time"`
	}
	if err := json.Unmarshal(buf, &m); err != nil || m.Time.IsZero() {
		return time.Time{}, false, false
	}
	return m.Time, strings.HasSuffix(m.Log, "\n"), true
}

// Streams of Docker's multiplexed stream.
const (
	streamStdout    = 1
	streamStderr    = 2
	streamSystemErr = 3
)

// maxChunk bounds what demux reads of a frame at once: a whole message
// of Docker's (16 KiB and its timestamp) fits.
const maxChunk = 32 << 10

// demux reads Docker's multiplexed stream (frames of an 8-byte header:
// the stream, three zero bytes and the big-endian payload size; then the
// payload) and calls fn with each frame's payload, in chunks of at most
// maxChunk. It returns nil at the end of the stream.
func demux(r io.Reader, fn func(stream byte, payload []byte) error) error {
	var hdr [8]byte
	buf := make([]byte, maxChunk)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		stream, size := hdr[0], int64(binary.BigEndian.Uint32(hdr[4:]))
		if stream == streamSystemErr {
			msg, _ := io.ReadAll(io.LimitReader(r, min(size, maxChunk)))
			return fmt.Errorf("docker: %s", bytes.TrimSpace(msg))
		}
		if stream != streamStdout && stream != streamStderr {
			return fmt.Errorf("docker log stream: unknown stream %d", stream)
		}
		for size > 0 {
			n := min(size, maxChunk)
			if _, err := io.ReadFull(r, buf[:n]); err != nil {
				return err
			}
			if err := fn(stream, buf[:n]); err != nil {
				return err
			}
			size -= n
		}
	}
}

// maxTimestamp bounds the timestamp before a message's data (Docker's is
// 30 to 35 bytes).
const maxTimestamp = 40

// messageWriter turns a stream of Docker messages ("<time> <data>") into
// LogLines: data ends at a newline, or at logbuf.MaxLine bytes, or at
// flush (the end of a frame or of the stream); then a new message's
// timestamp is expected. Bytes where a timestamp should be that are not
// one are data, stamped with the last time seen. It holds at most one
// line, so its memory is bounded whatever the job writes.
type messageWriter struct {
	stream string
	emit   func(host.LogLine) error
	last   time.Time
	inData bool         // past the current message's timestamp
	buf    bytes.Buffer // the timestamp, then the data, of the current message
}

func (w *messageWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if !w.inData {
			i := bytes.IndexByte(p, ' ')
			if i < 0 && w.buf.Len()+len(p) <= maxTimestamp {
				w.buf.Write(p)
				return n, nil
			}
			if i >= 0 && w.buf.Len()+i <= maxTimestamp {
				w.buf.Write(p[:i])
				p = p[i+1:]
				if t, err := time.Parse(time.RFC3339Nano, w.buf.String()); err == nil {
					w.last = t.UTC()
					w.buf.Reset()
					w.inData = true
					continue
				}
				w.buf.WriteByte(' ')
			}
			// Not a timestamp: what was read is data.
			w.inData = true
			continue
		}
		room := logbuf.MaxLine - w.buf.Len()
		chunk := p[:min(len(p), room)]
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			chunk = chunk[:i+1]
		}
		w.buf.Write(chunk)
		p = p[len(chunk):]
		if chunk[len(chunk)-1] == '\n' || w.buf.Len() >= logbuf.MaxLine {
			if err := w.send(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flush sends what is held: the end of a message.
func (w *messageWriter) flush() error {
	if w.buf.Len() == 0 {
		w.inData = false
		return nil
	}
	return w.send()
}

func (w *messageWriter) send() error {
	t := w.last
	if t.IsZero() {
		t = time.Now().UTC()
	}
	data := w.buf.String()
	w.buf.Reset()
	w.inData = false
	return w.emit(host.LogLine{Stream: w.stream, Time: t, Data: data})
}
