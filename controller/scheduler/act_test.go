package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/poll"
)

// A stop waits for its job's end, a grace period each: a host's stops run
// at once, up to HostStops, so that scaling down four jobs takes one grace
// rather than four (and a host does not overrun HostTimeout doing it).
func TestHostStopsRunConcurrently(t *testing.T) {
	tests := []struct {
		name       string
		hostStops  int // 0: the default
		wantAtOnce int
	}{
		{"the default lets all four stop at once", 0, 4},
		{"HostStops bounds them", 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			cluster := newFakeCluster("h1")
			cfg := testConfig()
			cfg.HostStops = tt.hostStops
			// Long enough that the held stops never overrun it: this
			// test is about their order, not about a host that hangs.
			cfg.HostTimeout = 30 * time.Second
			h.runWith(cfg, cluster)
			h1 := cluster.host("h1")
			h.scale(h.rel, map[string]int{"web": 4})
			poll.Until(t, 5*time.Second, "web=4", func() bool { return h1.live()[key(h.rel, "web")] == 4 })

			h1.holdStops()
			h.scale(h.rel, map[string]int{"web": 0})
			poll.UntilNil(t, 5*time.Second, fmt.Sprintf("%d stops waiting at once", tt.wantAtOnce), func() error {
				if now, _ := h1.stopsHeld(); now != tt.wantAtOnce {
					return fmt.Errorf("%d stops waiting", now)
				}
				return nil
			})
			h1.releaseStops()
			poll.Until(t, 5*time.Second, "web=0", func() bool { return h1.live()[key(h.rel, "web")] == 0 })
			if _, most := h1.stopsHeld(); most != tt.wantAtOnce {
				t.Errorf("at most %d stops ran at once, want %d", most, tt.wantAtOnce)
			}
		})
	}
}
