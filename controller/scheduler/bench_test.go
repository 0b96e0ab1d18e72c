package scheduler

import (
	"context"
	"github.com/openflynn/flynn/pkg/poll"
	"testing"
	"time"
)

// BenchmarkScale100 measures scaling a process type from 0 to 100 jobs on
// five fake hosts through a real controller: the time from the formation
// change to every job running, against the peer of doing the same 100
// host calls directly with no scheduler in between.
func BenchmarkScale100(b *testing.B) {
	h := newHarness(b)
	ids := []string{"h1", "h2", "h3", "h4", "h5"}
	var viaScheduler, direct time.Duration
	for i := 0; i < b.N; i++ {
		cluster := newFakeCluster(ids...)
		stop := h.run(cluster)
		start := time.Now()
		h.scale(h.rel, map[string]int{"web": 100})
		poll.Until(b, time.Minute, "100 jobs", func() bool { return cluster.live()[key(h.rel, "web")] == 100 })
		viaScheduler += time.Since(start)
		stop()
		h.scale(h.rel, map[string]int{"web": 0})

		peer := newFakeCluster(ids...)
		start = time.Now()
		for n := 0; n < 100; n++ {
			hostID := ids[n%len(ids)]
			job := JobFor(hostID, "example", h.rel, h.art, "web")
			if _, err := peer.host(hostID).AddJob(context.Background(), job); err != nil {
				b.Fatal(err)
			}
		}
		direct += time.Since(start)
	}
	b.ReportMetric(float64(viaScheduler.Milliseconds())/float64(b.N), "ms/scale-0-100")
	b.ReportMetric(float64(direct.Microseconds())/1000/float64(b.N), "ms/direct-100-adds")
}
