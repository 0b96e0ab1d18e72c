package server

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/openflynn/flynn/logaggregator"
	logclient "github.com/openflynn/flynn/logaggregator/client"
	logserver "github.com/openflynn/flynn/logaggregator/server"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/metrics"
)

// TestAppLog: GET /apps/:id/log serves the aggregator's lines of the app
// named in the path (by name or id), history and then followed lines.
func TestAppLog(t *testing.T) {
	h := newHarness(t)
	app := h.app(t, "shop")
	if _, err := h.client.AppLog(t.Context(), "shop", logaggregator.ReadOptions{}); !httpjson.IsCode(err, httpjson.CodeServiceUnavailable) {
		t.Fatalf("with no aggregator: %v, want service_unavailable", err)
	}

	store := logserver.NewStore(100, 1<<20)
	agg := httptest.NewServer(logserver.NewHandler(store, "agg-key", metrics.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer agg.Close()
	h.server.opts.Logs = logclient.New(agg.URL, "agg-key", nil)
	store.Append([]logaggregator.Line{
		{AppID: app.ID, JobID: "j1", ProcessType: "web", Data: "one\n", Time: time.Now()},
		{AppID: "other", JobID: "j9", Data: "not ours\n", Time: time.Now()},
		{AppID: app.ID, JobID: "j2", ProcessType: "worker", Data: "two\n", Time: time.Now()},
	})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s, err := h.client.AppLog(ctx, "shop", logaggregator.ReadOptions{Follow: true, ProcessType: "web"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := s.Next()
	if err != nil || l.Data != "one\n" {
		t.Fatalf("first line %+v, %v", l, err)
	}
	store.Append([]logaggregator.Line{
		{AppID: app.ID, JobID: "j2", ProcessType: "worker", Data: "filtered out\n", Time: time.Now()},
		{AppID: app.ID, JobID: "j3", ProcessType: "web", Data: "a new job\n", Time: time.Now()},
	})
	l, err = s.Next()
	if err != nil || l.Data != "a new job\n" || l.JobID != "j3" {
		t.Fatalf("followed line %+v, %v", l, err)
	}
	cancel()

	s, err = h.client.AppLog(t.Context(), app.ID, logaggregator.ReadOptions{Lines: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if l, err := s.Next(); err != nil || l.Data != "a new job\n" {
		t.Fatalf("last line %+v, %v", l, err)
	}
	if _, err := s.Next(); err != io.EOF {
		t.Fatalf("after the last line: %v", err)
	}
	if _, err := h.client.AppLog(t.Context(), "nope", logaggregator.ReadOptions{}); !httpjson.IsNotFound(err) {
		t.Errorf("an unknown app: %v", err)
	}
}
