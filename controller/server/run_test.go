package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/poll"
)

// TestRunWaitsForTheDatabase: a controller that starts while Postgres
// cannot be reached (starting, failing over, not yet in discoverd) keeps
// trying, and serves once it can; in bootstrap nothing would start again
// a controller that gave up, and bootstrap waited for it in vain.
func TestRunWaitsForTheDatabase(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var dials atomic.Int32
	var d net.Dialer
	cfg := Config{
		Addr:        addr,
		DatabaseURL: pg.Server(t).NewDatabase(t),
		AuthKey:     testKey,
		// The first three connections are refused, as while Postgres is
		// away.
		DialDatabase: func(ctx context.Context, network, address string) (net.Conn, error) {
			if dials.Add(1) <= 3 {
				return nil, errors.New("service postgres has no instances, so no leader")
			}
			return d.DialContext(ctx, network, address)
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	poll.UntilNil(t, 30*time.Second, "the controller answering", func() error {
		select {
		case err := <-done:
			t.Fatalf("Run returned while the database was away: %v", err)
		default:
		}
		resp, err := http.Get("http://" + addr + "/ping")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
	if n := dials.Load(); n < 4 {
		t.Errorf("%d dials, want the refused three and more", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// A URL that is no connection string fails at once: trying again cannot
// help.
func TestRunRefusesAMalformedDatabaseURL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Run(ctx, Config{Addr: "127.0.0.1:0", DatabaseURL: "postgres://a:b@host:port-not-a-number/db", AuthKey: testKey}, slog.New(slog.DiscardHandler))
	if !errors.Is(err, postgres.ErrDatabaseURL) || ctx.Err() != nil {
		t.Fatalf("Run = %v (after %v), want ErrDatabaseURL at once", err, ctx.Err())
	}
	if !strings.Contains(err.Error(), "controller: malformed database URL") {
		t.Errorf("error %q does not say what is wrong", err)
	}
}
