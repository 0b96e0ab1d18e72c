package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
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

// BenchmarkKeptLineMemory: the heap a kept line costs, for lines of an
// ordinary length (60-odd bytes of data) as a busy web app writes them;
// 10,000 lines (an app's default) cost that many times it.
func BenchmarkKeptLineMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		heap, data := keptLineCost(b)
		b.ReportMetric(heap, "heap-bytes/line")
		b.ReportMetric(data, "data-bytes/line")
	}
}

// keptLineCost fills a store of the default bounds with twice the lines it
// keeps (an app writing 20,000 ordinary lines) and returns the heap and the
// line data each kept line costs.
func keptLineCost(tb testing.TB) (heapPerLine, dataPerLine float64) {
	tb.Helper()
	batch := make([]logaggregator.Line, 1000)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	s := NewStore(logaggregator.DefaultLinesPerApp, DefaultBytesPerApp)
	for n := 0; n < 2*logaggregator.DefaultLinesPerApp; n += len(batch) {
		for j := range batch {
			batch[j] = line("0b5e8d0c-app-id", "host1-5a8f3e0c-1b2c-4d5e-8f90-123456789abc", fmt.Sprintf("GET /items/%d 200 in 3ms, a line of ordinary length", n+j))
		}
		s.Append(batch)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	st := s.Stats()
	if st.Lines != logaggregator.DefaultLinesPerApp {
		tb.Fatalf("kept %d lines, want %d", st.Lines, logaggregator.DefaultLinesPerApp)
	}
	runtime.KeepAlive(s)
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(st.Lines), float64(st.Bytes) / float64(st.Lines)
}
