package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/logaggregator"
)

func line(app, job, data string) logaggregator.Line {
	return logaggregator.Line{AppID: app, JobID: job, ProcessType: "web", Stream: logaggregator.StreamStdout, Time: time.Now(), Data: data + "\n"}
}

func datas(lines []logaggregator.Line) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(strings.TrimSuffix(l.Data, "\n"))
		b.WriteByte(' ')
	}
	return strings.TrimSpace(b.String())
}

func TestStoreKeepsTheLastLines(t *testing.T) {
	s := NewStore(3, 1<<20)
	for i := 1; i <= 5; i++ {
		s.Append([]logaggregator.Line{line("a", "j1", fmt.Sprint(i)), line("b", "j2", fmt.Sprint(10*i))})
	}
	got, last := s.Read("a", logaggregator.ReadOptions{})
	if datas(got) != "3 4 5" || last != 5 {
		t.Fatalf("app a: %q (last seq %d), want \"3 4 5\" (5)", datas(got), last)
	}
	if got[0].Seq != 3 || got[2].Seq != 5 {
		t.Errorf("seqs %d..%d, want 3..5", got[0].Seq, got[2].Seq)
	}
	if got, _ := s.Read("b", logaggregator.ReadOptions{Lines: 2}); datas(got) != "40 50" {
		t.Errorf("app b, last 2: %q", datas(got))
	}
	if got, _ := s.Read("none", logaggregator.ReadOptions{}); got != nil {
		t.Errorf("an app with no lines: %v", got)
	}
}

func TestStoreFilters(t *testing.T) {
	s := NewStore(100, 1<<20)
	t0 := time.Now()
	lines := []logaggregator.Line{line("a", "j1", "one"), line("a", "j2", "two"), line("a", "j1", "three")}
	lines[1].ProcessType = "worker"
	for i := range lines {
		lines[i].Time = t0.Add(time.Duration(i) * time.Second)
	}
	s.Append(lines)
	tests := []struct {
		name string
		opts logaggregator.ReadOptions
		want string
	}{
		{"all", logaggregator.ReadOptions{}, "one two three"},
		{"process type", logaggregator.ReadOptions{ProcessType: "web"}, "one three"},
		{"job", logaggregator.ReadOptions{JobID: "j2"}, "two"},
		{"since", logaggregator.ReadOptions{Since: t0.Add(time.Second)}, "two three"},
		{"after", logaggregator.ReadOptions{After: 2}, "three"},
		{"last of a type", logaggregator.ReadOptions{ProcessType: "web", Lines: 1}, "three"},
	}
	for _, tt := range tests {
		got, _ := s.Read("a", tt.opts)
		if datas(got) != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, datas(got), tt.want)
		}
	}
}

func TestStoreBoundsBytes(t *testing.T) {
	s := NewStore(1000, 100)
	big := strings.Repeat("x", 39)
	for i := 0; i < 10; i++ {
		s.Append([]logaggregator.Line{line("a", "j", big)})
	}
	st := s.Stats()
	if st.Bytes > 100 || st.Lines != 2 {
		t.Fatalf("kept %d lines of %d bytes, want 2 lines within 100 bytes", st.Lines, st.Bytes)
	}
	// Small lines after big ones: the ring grows again up to its line bound.
	for i := 0; i < 50; i++ {
		s.Append([]logaggregator.Line{line("a", "j", "s")})
	}
	if got, _ := s.Read("a", logaggregator.ReadOptions{}); len(got) != 50 {
		t.Fatalf("kept %d small lines, want 50", len(got))
	}
}

func TestStoreCutsLongLines(t *testing.T) {
	s := NewStore(10, 1<<20)
	long := strings.Repeat("é", logaggregator.MaxLineBytes) // 2 bytes each
	s.Append([]logaggregator.Line{line("a", "j", long)})
	got, _ := s.Read("a", logaggregator.ReadOptions{})
	if n := len(got[0].Data); n > logaggregator.MaxLineBytes || n < logaggregator.MaxLineBytes-1 {
		t.Fatalf("a long line kept %d bytes, want at most %d", n, logaggregator.MaxLineBytes)
	}
	if !strings.HasSuffix(got[0].Data, "é") {
		t.Error("the cut split a character")
	}
}

func TestStoreWatchWakes(t *testing.T) {
	s := NewStore(10, 1<<20)
	wake, stop := s.Watch("a")
	defer stop()
	s.Append([]logaggregator.Line{line("b", "j", "other app")})
	select {
	case <-wake:
		t.Fatal("woken by another app's line")
	default:
	}
	s.Append([]logaggregator.Line{line("a", "j", "1"), line("a", "j", "2")})
	select {
	case <-wake:
	default:
		t.Fatal("not woken by the app's lines")
	}
}

// TestStoreMemoryBound: an app writing twice the lines kept leaves the
// store at its line bound, and the heap near what those lines take.
func TestStoreMemoryBound(t *testing.T) {
	heap, data := keptLineCost(t)
	t.Logf("a kept line costs %.0f bytes of heap (%.0f of data)", heap, data)
	if heap > 512 {
		t.Errorf("a kept line costs %.0f bytes of heap, want under 512", heap)
	}
}

// TestStoreNamesRouterLines: a line of the router, which knows apps by id
// only, gets the app's name from the app's jobs' lines.
func TestStoreNamesRouterLines(t *testing.T) {
	s := NewStore(10, 1<<20)
	named := line("a", "j", "from a job")
	named.AppName = "shop"
	router := line("a", "router-job", "GET /")
	router.ProcessType = logaggregator.ProcessTypeRouter
	batch := []logaggregator.Line{router}
	s.Append([]logaggregator.Line{named})
	s.Append(batch)
	if batch[0].AppName != "shop" {
		t.Errorf("the router's line in the batch is named %q, want shop", batch[0].AppName)
	}
	got, _ := s.Read("a", logaggregator.ReadOptions{})
	if got[1].AppName != "shop" {
		t.Errorf("the router's kept line is named %q, want shop", got[1].AppName)
	}
}
