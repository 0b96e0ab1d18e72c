package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/poll"
)

// TestRunDrains stops a controller while a client goes on sending requests
// over a keep-alive connection, as a router or scheduler does while the
// controller is replaced: every request is answered in full, those of the
// drain with "Connection: close", and once the client has left the
// controller stops, long before its drain time is up.
func TestRunDrains(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := Config{Addr: addr, DatabaseURL: pg.Server(t).NewDatabase(t), AuthKey: testKey, DrainTimeout: 30 * time.Second}
	go func() { done <- Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	tp := &http.Transport{MaxIdleConnsPerHost: 1}
	defer tp.CloseIdleConnections()
	hc := &http.Client{Transport: tp}
	get := func(path string) (*http.Response, []byte, error) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		req.SetBasicAuth("", testKey)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, body, err
	}
	poll.Until(t, 30*time.Second, "the controller to answer", func() bool {
		resp, _, err := get("/ping")
		return err == nil && resp.StatusCode == http.StatusOK
	})

	// Every request from now on is answered in full: before the drain
	// begins as usual, during it with "Connection: close".
	cancel()
	poll.Until(t, 10*time.Second, "an answer that closes its connection", func() bool {
		resp, body, err := get("/apps")
		if err != nil {
			t.Fatalf("a request while stopping: %v", err)
		}
		var apps []any
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &apps) != nil {
			t.Fatalf("while stopping: %s %q, want 200 and the apps", resp.Status, body)
		}
		return resp.Close
	})
	// With the client gone, the drain is over long before its timeout.
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return once its last client left")
	}
	done <- nil // for the cleanup
}
