package pg_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/blobstore/blobstoretest"
	"github.com/openflynn/flynn/blobstore/client"
	"github.com/openflynn/flynn/blobstore/pg"
	"github.com/openflynn/flynn/blobstore/server"
	"github.com/openflynn/flynn/pkg/poll"
)

// countingOpens counts the Opens that returned, so the test knows each
// stalled reader's download has started.
type countingOpens struct {
	*pg.Store
	opened atomic.Int32
}

func (c *countingOpens) Open(ctx context.Context, p string) (io.ReadSeekCloser, blobstore.Info, error) {
	r, info, err := c.Store.Open(ctx, p)
	if err == nil {
		c.opened.Add(1)
	}
	return r, info, err
}

// TestStalledReadersDoNotHoldThePool starts more downloads than the pool
// has connections, from clients that send the request and never read the
// reply, then fetches the same multi-chunk blob: it must arrive, whole,
// while they stall. A download that held a connection (and a transaction)
// for as long as its client took would leave the fetch waiting for the
// pool.
func TestStalledReadersDoNotHoldThePool(t *testing.T) {
	const (
		poolSize = 2
		stalled  = poolSize + 2
		// Far more than the socket buffers between a stalled client and
		// the server hold, so each stalled download stays in the middle
		// of its blob; and many chunks.
		size      = 24<<20 + 17
		chunkSize = 256 << 10
	)
	url := shared.Server(t).NewDatabase(t) + fmt.Sprintf("&pool_max_conns=%d", poolSize)
	store := &countingOpens{Store: newStore(t, url, chunkSize)}
	srv := httptest.NewServer(server.NewHandler(store, server.Options{AuthKey: blobstoretest.Key}, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer hc.CloseIdleConnections()
	c := client.New(srv.URL, blobstoretest.Key)
	c.HTTP = hc

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const path = "apps/6f0c/slug-1.tgz"
	src := blobstoretest.NewGenerated(6, size)
	if _, err := c.Put(ctx, path, src); err != nil {
		t.Fatalf("put: %v", err)
	}

	for i := range stalled {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		// Closing the stalled clients (before srv.Close, deferred earlier)
		// ends their downloads with a write error.
		defer conn.Close()
		req := fmt.Sprintf("GET /%s HTTP/1.1\r\nHost: blobstore\r\nAuthorization: Basic %s\r\n\r\n", path, basicAuth(blobstoretest.Key))
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatalf("stalled reader %d: %v", i, err)
		}
	}
	poll.Until(t, 30*time.Second, fmt.Sprintf("all %d stalled downloads to open the blob with a pool of %d", stalled, poolSize), func() bool {
		return store.opened.Load() == stalled
	})

	fetchCtx, cancelFetch := context.WithTimeout(ctx, 30*time.Second)
	defer cancelFetch()
	body, _, err := c.Get(fetchCtx, path)
	if err != nil {
		t.Fatalf("get while %d readers stall: %v", stalled, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, body)
	body.Close()
	if err != nil {
		t.Fatalf("get while %d readers stall: read body after %d bytes: %v", stalled, n, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != size || got != src.SHA256() {
		t.Fatalf("got %d bytes with sha256 %s, want %d bytes with %s", n, got, int64(size), src.SHA256())
	}
}

func basicAuth(key string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth("", key)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}
