package provider

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/poll"
)

// TestRun serves on a real database until its context ends.
func TestRun(t *testing.T) {
	s := pg.Server(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	const addr = "127.0.0.1:15501"
	go func() {
		done <- Run(ctx, Config{HTTPAddr: addr, DatabaseURL: s.URL("postgres"), Key: testKey, Domain: "example.test"}, slog.New(slog.DiscardHandler))
	}()
	client := &http.Client{Timeout: 5 * time.Second}
	poll.UntilNil(t, 10*time.Second, "GET /health answers 200", func() error {
		resp, err := client.Get("http://" + addr + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return &statusError{resp.Status}
		}
		return nil
	})
	client.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after its context ended", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

type statusError struct{ status string }

func (e *statusError) Error() string { return "status " + e.status }

func TestRunRefusesBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no database": {Domain: "example.test"},
		"no domain":   {DatabaseURL: "postgres://x/y"},
		"unparsable":  {DatabaseURL: "postgres://postgres:s3cret@[::1/x", Domain: "example.test"},
	} {
		t.Run(name, func(t *testing.T) {
			err := Run(t.Context(), cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				t.Fatal("Run = nil, want an error")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}
