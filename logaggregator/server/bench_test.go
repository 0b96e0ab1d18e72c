package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/pkg/metrics"
)

// BenchmarkPostLines: what one aggregator ingests through its HTTP API,
// in batches of 500 lines as a busy shipper posts them; lines/s is the
// figure (one CPU's worth, since the benchmark posts one batch at a time).
func BenchmarkPostLines(b *testing.B) {
	store := NewStore(logaggregator.DefaultLinesPerApp, DefaultBytesPerApp)
	srv := httptest.NewServer(NewHandler(store, "k", metrics.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	const batch = 500
	for i := 0; i < batch; i++ {
		l := logaggregator.Line{Time: time.Now(), AppID: "0b5e8d0c-app-id", AppName: "shop", ReleaseID: "7d1f-release-id", ProcessType: "web",
			JobID: "host1-5a8f3e0c-1b2c-4d5e-8f90-123456789abc", HostID: "host1", Stream: logaggregator.StreamStdout,
			Data: fmt.Sprintf("GET /items/%d 200 in 3ms, a line of an ordinary length\n", i)}
		if err := enc.Encode(&l); err != nil {
			b.Fatal(err)
		}
	}
	payload := body.Bytes()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/lines", bytes.NewReader(payload))
		req.SetBasicAuth("", "k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "lines/s")
}
