package metrics_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/metrics/metricstest"
)

// TestServe: the metrics, behind their key, at GET metrics.Path and
// nowhere else, until ctx ends.
func TestServe(t *testing.T) {
	reg := metrics.NewRegistry()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- metrics.Serve(ctx, ln, metrics.Handler(reg, "k"), slog.New(slog.DiscardHandler)) }()
	base := "http://" + ln.Addr().String()

	tests := []struct {
		name, method, path, key string
		want                    int
	}{
		{"no key", http.MethodGet, metrics.Path, "", http.StatusUnauthorized},
		{"a wrong key", http.MethodGet, metrics.Path, "guess", http.StatusUnauthorized},
		{"the key", http.MethodGet, metrics.Path, "k", http.StatusOK},
		{"anything else", http.MethodGet, "/", "k", http.StatusNotFound},
		{"below the metrics", http.MethodGet, metrics.Path + "/x", "k", http.StatusNotFound},
		{"another method", http.MethodPost, metrics.Path, "k", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, base+tt.path, strings.NewReader(""))
			if tt.key != "" {
				req.SetBasicAuth("", tt.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
			}
		})
	}
	if !metricstest.Get(t, base+metrics.Path, "k").Has("go_goroutines") {
		t.Error("no go_goroutines")
	}

	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve after ctx ended: %v, want nil", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("the listener is still open after Serve returned")
	}
}

// TestServeFails: a listener that fails ends Serve with its error, ctx
// or not.
func TestServeFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = metrics.Serve(t.Context(), ln, metrics.Handler(metrics.NewRegistry(), "k"), slog.New(slog.DiscardHandler))
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve on a closed listener: %v, want net.ErrClosed", err)
	}
}
