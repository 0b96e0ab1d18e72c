package docker

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/logbuf"
	"github.com/openflynn/flynn/pkg/poll"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)

// message is one of Docker's log messages with its timestamp.
func message(i int, data string) string {
	return t0.Add(time.Duration(i)*time.Second).Format("2006-01-02T15:04:05.000000000Z07:00") + " " + data
}

// frame is a message in Docker's multiplexed stream.
func frame(stream byte, payload string) []byte {
	hdr := make([]byte, 8)
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(payload)))
	return append(hdr, payload...)
}

// longLine is Docker's messages of a line of n bytes without a newline:
// pieces of 16 KiB, then the rest when the job ends.
func longLine(n int) []string {
	var out []string
	for i := 0; n > 0; i++ {
		k := min(n, logbuf.MaxLine)
		out = append(out, message(i, strings.Repeat("x", k)))
		n -= k
	}
	return out
}

type collected struct{ lines []host.LogLine }

func (c *collected) emit(l host.LogLine) error {
	c.lines = append(c.lines, l)
	return nil
}

func (c *collected) summary() []string {
	var out []string
	for _, l := range c.lines {
		if len(l.Data) > 20 {
			out = append(out, fmt.Sprintf("%s %d:%s… (%d bytes)", l.Stream, l.Time.Second(), l.Data[:3], len(l.Data)))
		} else {
			out = append(out, fmt.Sprintf("%s %d:%q", l.Stream, l.Time.Second(), l.Data))
		}
	}
	return out
}

func TestDemuxMessages(t *testing.T) {
	var stream bytes.Buffer
	stream.Write(frame(1, message(0, "hello\n")))
	stream.Write(frame(2, message(1, "oops\n")))
	for _, m := range longLine(2*logbuf.MaxLine + 5) {
		stream.Write(frame(1, m))
	}
	stream.Write(frame(1, message(3, "\n")))
	stream.Write(frame(1, "not a timestamp at all\n"))

	var c collected
	out := &messageWriter{stream: host.StreamStdout, emit: c.emit}
	errw := &messageWriter{stream: host.StreamStderr, emit: c.emit}
	err := demux(&stream, func(s byte, p []byte) error {
		w := out
		if s == streamStderr {
			w = errw
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
		return w.flush()
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`stdout 5:"hello\n"`,
		`stderr 6:"oops\n"`,
		"stdout 5:xxx… (16384 bytes)",
		"stdout 6:xxx… (16384 bytes)",
		`stdout 7:"xxxxx"`,
		`stdout 8:"\n"`,
		"stdout 8:not… (23 bytes)", // "not a timestamp at all\n", stamped with the last time seen
	}
	if got := c.summary(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDemuxErrors(t *testing.T) {
	tests := []struct {
		name, want string
		stream     []byte
	}{
		{name: "docker error", stream: frame(3, "something broke\n"), want: "docker: something broke"},
		{name: "unknown stream", stream: frame(7, "x"), want: "unknown stream 7"},
		{name: "cut frame", stream: frame(1, "abc")[:9], want: "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := demux(bytes.NewReader(tt.stream), func(byte, []byte) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("demux = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestTerminalStreamBounded: with a terminal, messages follow each other
// on one stream, written in pieces of any size; a line of megabytes
// without a newline comes out in lines of at most MaxLine bytes. (Docker
// ends a message short of 16 KiB without a newline only when the job's
// output ends, so such a message is the last.)
func TestTerminalStreamBounded(t *testing.T) {
	msgs := []string{message(0, "prompt$ \r\n"), message(9, "bye\r\n")}
	msgs = append(msgs, longLine(3*logbuf.MaxLine+1)...)
	raw := []byte(strings.Join(msgs, ""))
	for _, size := range []int{1, 7, 4096, 1 << 20} {
		t.Run(fmt.Sprintf("writes of %d", size), func(t *testing.T) {
			var c collected
			w := &messageWriter{stream: host.StreamStdout, emit: c.emit}
			for p := raw; len(p) > 0; {
				n := min(size, len(p))
				if _, err := w.Write(p[:n]); err != nil {
					t.Fatal(err)
				}
				if w.buf.Len() > logbuf.MaxLine+maxTimestamp {
					t.Fatalf("writer holds %d bytes", w.buf.Len())
				}
				p = p[n:]
			}
			if err := w.flush(); err != nil {
				t.Fatal(err)
			}
			want := []string{
				`stdout 5:"prompt$ \r\n"`,
				`stdout 14:"bye\r\n"`,
				"stdout 5:xxx… (16384 bytes)",
				"stdout 6:xxx… (16384 bytes)",
				"stdout 7:xxx… (16384 bytes)",
				`stdout 8:"x"`,
			}
			if got := c.summary(); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestNoTimestampsStillBounded: a stream of anything at all (no
// timestamps, no newlines) is cut into lines of at most MaxLine bytes.
func TestNoTimestampsStillBounded(t *testing.T) {
	var c collected
	w := &messageWriter{stream: host.StreamStdout, emit: c.emit}
	chunk := bytes.Repeat([]byte("y"), 10000)
	total := 0
	for range 100 {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
		total += len(chunk)
	}
	_ = w.flush()
	got := 0
	for _, l := range c.lines {
		if len(l.Data) > logbuf.MaxLine {
			t.Fatalf("line of %d bytes", len(l.Data))
		}
		got += len(l.Data)
	}
	if got != total {
		t.Fatalf("emitted %d bytes, want %d", got, total)
	}
}

// jsonMessage is a line of Docker's json-file log.
func jsonMessage(t *testing.T, log string, at time.Time) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{"log": log, "stream": "stdout", "time": at.Format(time.RFC3339Nano)})
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// TestStallWatch: a follow is given up only when it has been silent while
// the log file's last message is one it did not deliver.
func TestStallWatch(t *testing.T) {
	const after, every = 150 * time.Millisecond, 20 * time.Millisecond
	t1 := time.Date(2026, 12, 1, 23, 9, 15, 618683835, time.UTC)
	t2 := t1.Add(22 * time.Second)
	piece := strings.Repeat("x", 16<<10)
	for _, tc := range []struct {
		name        string
		file        []string // the file's messages: log, or "" for t2's "flood done\n"
		gotTime     time.Time
		gotPartial  bool
		keepFeeding bool
		noFile      bool
		want        bool
	}{
		{name: "a later message in the file", file: []string{piece, "\n", ""}, gotTime: t1, gotPartial: true, want: true},
		{name: "the line's end in the file", file: []string{piece, piece, "\n"}, gotTime: t1, gotPartial: true, want: true},
		{name: "caught up in the middle of a line", file: []string{piece, piece}, gotTime: t1, gotPartial: true},
		{name: "caught up", file: []string{piece, "\n", ""}, gotTime: t2},
		{name: "a later message, the follow feeding", file: []string{piece, "\n", ""}, gotTime: t1, gotPartial: true, keepFeeding: true},
		{name: "an empty file", gotTime: t1},
		{name: "no log file", noFile: true, gotTime: t1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c-json.log")
			var content strings.Builder
			for _, l := range tc.file {
				if l == "" {
					content.WriteString(jsonMessage(t, "flood done\n", t2))
					continue
				}
				content.WriteString(jsonMessage(t, l, t1))
			}
			if !tc.noFile {
				if err := os.WriteFile(path, []byte(content.String()), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			w := &stallWatch{path: path, after: after, every: every}
			w.received(tc.gotTime, tc.gotPartial)
			ctx, cancel := context.WithTimeout(context.Background(), 10*after)
			defer cancel()
			got := make(chan bool, 1)
			go func() { got <- w.run(ctx) }()
			feed := time.NewTicker(every)
			defer feed.Stop()
			for {
				select {
				case stalled := <-got:
					if stalled != tc.want {
						t.Fatalf("stalled = %v, want %v", stalled, tc.want)
					}
					if stalled != w.stalled.Load() {
						t.Fatalf("run said %v but stalled holds %v", stalled, w.stalled.Load())
					}
					return
				case <-feed.C:
					if tc.keepFeeding {
						w.received(tc.gotTime, tc.gotPartial)
					}
				}
			}
		})
	}
}

// TestStallWatchRereadsAChangedFile: a file that showed nothing newer is
// read again once it changes.
func TestStallWatchRereadsAChangedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	t1 := time.Now().Add(-time.Minute)
	if err := os.WriteFile(path, []byte(jsonMessage(t, "up\n", t1)), 0o600); err != nil {
		t.Fatal(err)
	}
	w := &stallWatch{path: path, after: 50 * time.Millisecond, every: 10 * time.Millisecond}
	w.received(t1, false)
	got := make(chan bool, 1)
	go func() { got <- w.run(t.Context()) }()
	poll.Until(t, 5*time.Second, "the quiet file is seen", func() bool {
		return w.seenState() != fileState{}
	})
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(jsonMessage(t, "later\n", t1.Add(time.Second)))
	f.Close()
	select {
	case stalled := <-got:
		if !stalled {
			t.Fatal("run ended without a stall")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a message written after the follow went silent was not noticed")
	}
}
