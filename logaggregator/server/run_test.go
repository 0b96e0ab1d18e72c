package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/logaggregator/client"
	"github.com/openflynn/flynn/pkg/poll"
)

// start runs the aggregator on a free port until the test ends.
func start(t *testing.T, cfg Config) (*client.Client, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Key = testKey
	cfg.Ready = func(addr string) { ready <- addr }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
	return client.New("http://"+addr, testKey, nil), stop
}

func readAll(t *testing.T, c *client.Client, app string) []logaggregator.Line {
	t.Helper()
	s, err := c.Read(context.Background(), app, logaggregator.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []logaggregator.Line
	for {
		l, err := s.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
}

// TestLinesSurviveRestart: with a data dir the lines, and their numbering,
// outlive the aggregator's restart; a snapshot is also taken while it runs.
func TestLinesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, SnapshotInterval: 20 * time.Millisecond}
	c, stop := start(t, cfg)
	if err := c.Post(context.Background(), []logaggregator.Line{line("a", "j", "one"), line("a", "j", "two")}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "a snapshot while running", func() bool {
		_, err := os.Stat(filepath.Join(dir, snapshotFile))
		return err == nil
	})
	stop()

	c, stop = start(t, cfg)
	defer stop()
	if err := c.Post(context.Background(), []logaggregator.Line{line("a", "j", "three")}); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, c, "a")
	if datas(got) != "one two three" || got[2].Seq != 3 {
		t.Fatalf("after a restart: %+v", got)
	}
}
