package logbuf

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
)

func line(stream, data string, i int) host.LogLine {
	return host.LogLine{Stream: stream, Data: data, Time: time.Unix(1700000000, int64(i)).UTC()}
}

func readAll(t *testing.T, l *Log, opts ReadOptions) []host.LogLine {
	t.Helper()
	var got []host.LogLine
	if err := l.Read(context.Background(), opts, func(ln host.LogLine) error {
		got = append(got, ln)
		return nil
	}); err != nil {
		t.Fatalf("Read: %v", err)
	}
	return got
}

func TestWriteReadTailStream(t *testing.T) {
	l, err := Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	must(t, l.Write(line(host.StreamStdout, "one\ntwo\n", 1)))
	must(t, l.Write(line(host.StreamStderr, "err\n", 2)))
	must(t, l.Write(line(host.StreamStdout, "partial", 3)))

	tests := []struct {
		name string
		opts ReadOptions
		want []string
	}{
		{name: "all", want: []string{"stdout:one\n", "stdout:two\n", "stderr:err\n", "stdout:partial"}},
		{name: "stdout", opts: ReadOptions{Stream: host.StreamStdout}, want: []string{"stdout:one\n", "stdout:two\n", "stdout:partial"}},
		{name: "stderr", opts: ReadOptions{Stream: host.StreamStderr}, want: []string{"stderr:err\n"}},
		{name: "tail 2", opts: ReadOptions{Tail: 2}, want: []string{"stderr:err\n", "stdout:partial"}},
		{name: "tail 1 stdout", opts: ReadOptions{Tail: 1, Stream: host.StreamStdout}, want: []string{"stdout:partial"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, ln := range readAll(t, l, tt.opts) {
				got = append(got, ln.Stream+":"+ln.Data)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if want := time.Unix(1700000000, 3).UTC(); !l.LastTime().Equal(want) {
		t.Errorf("LastTime = %v, want %v", l.LastTime(), want)
	}
}

func TestBoundedAndReopen(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		must(t, l.Write(line(host.StreamStdout, fmt.Sprintf("line %03d\n", i), i)))
	}
	segs, _ := l.segments()
	if len(segs) > 2 {
		t.Fatalf("%d segments on disk, want at most 2", len(segs))
	}
	got := readAll(t, l, ReadOptions{})
	if len(got) == 0 || len(got) >= 500 {
		t.Fatalf("read %d lines, want a bounded non-empty suffix", len(got))
	}
	if last := got[len(got)-1].Data; last != "line 499\n" {
		t.Fatalf("last line = %q, want the newest", last)
	}
	must(t, l.Finish())

	// A reopened log (daemon restart) knows where it stopped and appends.
	l2, err := Open(dir, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1700000000, 499).UTC(); !l2.LastTime().Equal(want) {
		t.Fatalf("reopened LastTime = %v, want %v", l2.LastTime(), want)
	}
	must(t, l2.Write(line(host.StreamStdout, "after restart\n", 600)))
	got = readAll(t, l2, ReadOptions{Tail: 2})
	if len(got) != 2 || got[0].Data != "line 499\n" || got[1].Data != "after restart\n" {
		t.Fatalf("tail after reopen = %+v", got)
	}
}

func TestFollow(t *testing.T) {
	l, err := Open(t.TempDir(), 200)
	if err != nil {
		t.Fatal(err)
	}
	must(t, l.Write(line(host.StreamStdout, "before\n", 0)))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lines := make(chan string, 100)
	var wg sync.WaitGroup
	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		readErr = l.Read(ctx, ReadOptions{Follow: true, Stream: host.StreamStdout}, func(ln host.LogLine) error {
			lines <- ln.Data
			return nil
		})
		close(lines)
	}()
	if got := <-lines; got != "before\n" {
		t.Fatalf("first followed line = %q", got)
	}
	// Written after the follower caught up, across several segment rotations.
	for i := 1; i <= 30; i++ {
		must(t, l.Write(line(host.StreamStdout, fmt.Sprintf("after %d\n", i), i)))
		if got, want := <-lines, fmt.Sprintf("after %d\n", i); got != want {
			t.Fatalf("followed %q, want %q", got, want)
		}
	}
	must(t, l.Write(line(host.StreamStderr, "not for stdout\n", 31)))
	must(t, l.Finish())
	wg.Wait()
	if readErr != nil {
		t.Fatalf("follow ended with %v, want nil after Finish", readErr)
	}
	var rest []string
	for s := range lines {
		rest = append(rest, s)
	}
	if len(rest) != 0 {
		t.Fatalf("stdout follower got %q after the last stdout line", rest)
	}
	if err := l.Write(line(host.StreamStdout, "x\n", 40)); err == nil || !strings.Contains(err.Error(), "finish") {
		t.Fatalf("Write after Finish = %v, want an error", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLongLineCapped: a line far longer than MaxLine, without a newline,
// is kept as lines of MaxLine bytes (none ending with a newline) that add
// up to it; the records on disk stay bounded.
func TestLongLineCapped(t *testing.T) {
	l, err := Open(t.TempDir(), 64*MaxLine)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("z", 10*MaxLine+5)
	must(t, l.Write(line(host.StreamStdout, long, 1)))
	must(t, l.Write(line(host.StreamStdout, "short\n", 2)))
	got := readAll(t, l, ReadOptions{})
	if len(got) != 12 {
		t.Fatalf("read %d lines, want 11 pieces and the short line", len(got))
	}
	var joined strings.Builder
	for i, ln := range got[:11] {
		if len(ln.Data) > MaxLine || strings.HasSuffix(ln.Data, "\n") {
			t.Fatalf("piece %d: %d bytes, newline %v; want at most %d bytes and none", i, len(ln.Data), strings.HasSuffix(ln.Data, "\n"), MaxLine)
		}
		joined.WriteString(ln.Data)
	}
	if joined.String() != long {
		t.Fatal("the pieces do not add up to the line")
	}
	if got[11].Data != "short\n" {
		t.Fatalf("line after the long one = %q", got[11].Data)
	}
}
