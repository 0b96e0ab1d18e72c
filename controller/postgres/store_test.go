package postgres

import (
	"context"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// TestOpenDialsThroughDialFunc checks that a dial function gets the URL's
// host unresolved (a discoverd name means nothing to DNS) and that every
// connection of the pool goes through it.
func TestOpenDialsThroughDialFunc(t *testing.T) {
	real, err := url.Parse(shared.Server(t).NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	named := *real
	named.Host = "leader.postgres.discoverd"
	var (
		mu     sync.Mutex
		dialed []string
	)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, real.Host)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	store, err := Open(ctx, named.String(), Options{DialFunc: dial})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, _, err := store.Apps.List(ctx, Page{}); err != nil {
		t.Fatalf("list apps over the dialed connection: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dialed) == 0 {
		t.Fatal("the dial function was never called")
	}
	for _, addr := range dialed {
		if addr != "leader.postgres.discoverd:5432" {
			t.Errorf("dialed %q, want the URL's host unresolved with the default port", addr)
		}
	}
}
