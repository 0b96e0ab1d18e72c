package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/logaggregator/client"
	"github.com/openflynn/flynn/pkg/metrics"
)

const testKey = "s3cret"

func newTestServer(t *testing.T) (*httptest.Server, *Store) {
	t.Helper()
	store := NewStore(100, 1<<20)
	h := NewHandler(store, testKey, metrics.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.keepAlive = 50 * time.Millisecond
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, store
}

func TestPostAndRead(t *testing.T) {
	srv, _ := newTestServer(t)
	c := client.New(srv.URL, testKey, nil)
	ctx := context.Background()
	if err := c.Post(ctx, []logaggregator.Line{line("a", "j1", "one"), line("b", "j1", "other"), line("a", "j2", "two")}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Read(ctx, "a", logaggregator.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []logaggregator.Line
	for {
		l, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	if datas(got) != "one two" || got[1].JobID != "j2" || got[1].Seq != 2 {
		t.Fatalf("read %+v", got)
	}

	wrong := client.New(srv.URL, "guess", nil)
	if err := wrong.Post(ctx, []logaggregator.Line{line("a", "j", "x")}); err == nil || !strings.Contains(err.Error(), "cluster key") {
		t.Errorf("a post with a wrong key: %v", err)
	}
	if _, err := wrong.Read(ctx, "a", logaggregator.ReadOptions{}); err == nil {
		t.Error("a read with a wrong key passed")
	}
}

// TestBadLinesDropOnlyThemselves: a line without an app, or not JSON, is
// dropped; the rest of its batch is kept.
func TestBadLinesDropOnlyThemselves(t *testing.T) {
	srv, store := newTestServer(t)
	body := `{"app_id":"a","data":"kept 1\n"}
not json
{"data":"no app\n"}

{"app_id":"a","data":"kept 2\n","stream":"bogus"}
`
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/lines", strings.NewReader(body))
	req.SetBasicAuth("", testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got, _ := store.Read("a", logaggregator.ReadOptions{})
	if datas(got) != "kept 1 kept 2" || got[1].Stream != logaggregator.StreamStdout {
		t.Fatalf("kept %+v", got)
	}

	huge := strings.Repeat(`{"app_id":"a","data":"`+strings.Repeat("x", 1000)+`"}`+"\n", logaggregator.MaxBatchBytes/1000+10)
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/lines", strings.NewReader(huge))
	req.SetBasicAuth("", testKey)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a batch over the bound: status %d, want 413", resp.StatusCode)
	}
}

// TestFollow: a follower gets the history, then lines of jobs that start
// after it began (a scale-up), and only its app's.
func TestFollow(t *testing.T) {
	srv, _ := newTestServer(t)
	c := client.New(srv.URL, testKey, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Post(ctx, []logaggregator.Line{line("a", "web.1", "before")}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Read(ctx, "a", logaggregator.ReadOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lines := make(chan logaggregator.Line)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			l, err := s.Next()
			if err != nil {
				return
			}
			lines <- l
		}
	}()
	next := func() logaggregator.Line {
		t.Helper()
		select {
		case l := <-lines:
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no line")
			return logaggregator.Line{}
		}
	}
	if l := next(); l.Data != "before\n" {
		t.Fatalf("first line %q", l.Data)
	}
	if err := c.Post(ctx, []logaggregator.Line{line("b", "web.9", "other app"), line("a", "web.2", "new job")}); err != nil {
		t.Fatal(err)
	}
	if l := next(); l.Data != "new job\n" || l.JobID != "web.2" {
		t.Fatalf("followed line %+v", l)
	}
	cancel()
	<-done
}

func TestFollowSSE(t *testing.T) {
	srv, store := newTestServer(t)
	store.Append([]logaggregator.Line{line("a", "j", "one")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/apps/a/log?follow=true", nil)
	req.SetBasicAuth("", testKey)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	want := []string{"id: 1", "event: line"}
	for _, w := range want {
		got, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(got) != w {
			t.Fatalf("got %q, want %q", got, w)
		}
	}
	data, _ := r.ReadString('\n')
	var l logaggregator.Line
	if err := json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(data), "data: ")), &l); err != nil || l.Data != "one\n" {
		t.Fatalf("data %q: %v", data, err)
	}
	// A quiet follow gets keep-alives.
	for {
		got, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(got, ":") {
			break
		}
	}
}
