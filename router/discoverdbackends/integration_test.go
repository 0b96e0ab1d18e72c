package discoverdbackends

import (
	"context"
	"testing"
	"time"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
	"github.com/openflynn/flynn/router"
)

// TestWithRealDiscoverd follows a real discoverd (embedded etcd): backends
// appear when registered and leave within a second of deregistering.
func TestWithRealDiscoverd(t *testing.T) {
	d := discoverdtest.New(t, discoverdtest.Options{})
	c := d.Client()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	regA, err := c.Register(ctx, "web", &discoverd.Instance{Addr: "127.0.0.1:5001", Proto: "http"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, "web", &discoverd.Instance{Addr: "127.0.0.1:5002", Proto: "http"}); err != nil {
		t.Fatal(err)
	}
	sets, err := New(c).WatchBackends(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	waitSet := func(want ...string) time.Duration {
		t.Helper()
		start := time.Now()
		deadline := time.After(10 * time.Second)
		var last []router.Backend
		for {
			select {
			case last = <-sets:
				if sameAddrs(last, want) {
					return time.Since(start)
				}
			case <-deadline:
				t.Fatalf("backends = %v, want %v", last, want)
			}
		}
	}
	waitSet("127.0.0.1:5001", "127.0.0.1:5002")
	if err := regA.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	if d := waitSet("127.0.0.1:5002"); d > time.Second {
		t.Errorf("deregistered instance left the set after %v, want within 1s", d)
	}
}

func sameAddrs(bs []router.Backend, want []string) bool {
	if len(bs) != len(want) {
		return false
	}
	have := map[string]bool{}
	for _, b := range bs {
		have[b.Addr] = true
	}
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}
