package hostrunner

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// statsHost is a host API answering GET /host/jobs/:id/stats from stats;
// a job it does not hold has ended (conflict), and a down host fails
// every call.
type statsHost struct {
	stats map[string]*host.JobStats
	down  bool
}

func (f *statsHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/host/jobs/"), "/stats")
	switch {
	case f.down:
		httpjson.WriteError(w, httpjson.Errorf(httpjson.CodeServiceUnavailable, "down"))
	case r.Method != http.MethodGet || !ok:
		httpjson.WriteError(w, httpjson.NotFound("no such endpoint"))
	case f.stats[id] == nil:
		httpjson.WriteError(w, httpjson.Errorf(httpjson.CodeConflict, "job %s is down", id))
	default:
		httpjson.Write(w, http.StatusOK, f.stats[id])
	}
}

func TestJobStats(t *testing.T) {
	tests := []struct {
		name    string
		host    *statsHost
		ask     []string
		want    map[string]*host.JobStats
		wantErr bool
	}{
		{
			name: "running jobs",
			host: &statsHost{stats: map[string]*host.JobStats{
				"h1-a": {CPUPercent: 12.5, CPUSeconds: 3, MemoryBytes: 64 << 20},
				"h1-b": {CPUPercent: 0.1, MemoryBytes: 10 << 20, MemoryLimitBytes: 256 << 20},
			}},
			ask: []string{"h1-a", "h1-b"},
			want: map[string]*host.JobStats{
				"h1-a": {CPUPercent: 12.5, CPUSeconds: 3, MemoryBytes: 64 << 20},
				"h1-b": {CPUPercent: 0.1, MemoryBytes: 10 << 20, MemoryLimitBytes: 256 << 20},
			},
		},
		{
			name: "a job that ended is left out",
			host: &statsHost{stats: map[string]*host.JobStats{"h1-a": {CPUPercent: 1, MemoryBytes: 1}}},
			ask:  []string{"h1-a", "h1-gone"},
			want: map[string]*host.JobStats{"h1-a": {CPUPercent: 1, MemoryBytes: 1}},
		},
		{name: "a host that fails", host: &statsHost{down: true}, ask: []string{"h1-a"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.host)
			defer srv.Close()
			disc := &fakeDiscoverd{insts: []*discoverd.Instance{{Addr: strings.TrimPrefix(srv.URL, "http://"), Meta: map[string]string{"id": "h1"}}}}
			r := New(disc, "", slog.New(slog.DiscardHandler))
			got, err := r.JobStats(t.Context(), "h1", tt.ask)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("JobStats = %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("JobStats = %v, want %v", got, tt.want)
			}
			for id, w := range tt.want {
				if g := got[id]; g == nil || *g != *w {
					t.Errorf("stats of %s = %+v, want %+v", id, g, w)
				}
			}
		})
	}
	if _, err := New(&fakeDiscoverd{}, "", slog.New(slog.DiscardHandler)).JobStats(t.Context(), "h9", []string{"h9-a"}); err == nil {
		t.Error("stats from an unregistered host: no error")
	}
}
