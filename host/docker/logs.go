package docker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
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
	w.received()
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
		w.received()
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
// although the file was written after the last thing that came.
type stallWatch struct {
	path  string        // the container's log file; "" if Docker names none
	after time.Duration // silence, with the file newer, that makes a stall
	every time.Duration // how often the file is looked at

	last    atomic.Int64 // unix nanoseconds of the last message received
	stalled atomic.Bool
}

// received notes that the follower is alive.
func (w *stallWatch) received() { w.last.Store(time.Now().UnixNano()) }

// run watches until ctx ends or the follow stalls, and reports a stall.
// A log file it cannot see (another driver, a remote engine) is no stall.
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
		last := time.Unix(0, w.last.Load())
		if time.Since(last) < w.after {
			continue
		}
		fi, err := os.Stat(w.path)
		if err != nil || !fi.ModTime().After(last) {
			continue
		}
		w.stalled.Store(true)
		return true
	}
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
