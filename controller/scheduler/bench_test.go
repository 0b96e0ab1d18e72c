package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller/hostjob"
	"github.com/openflynn/flynn/pkg/poll"
)

// BenchmarkScale100 measures scaling a process type from 0 to 100 jobs on
// five fake hosts through the in-memory controller: the time from the
// formation change to every job running, against the peer of doing the
// same 100 host calls directly with no scheduler in between.
func BenchmarkScale100(b *testing.B) {
	h := newHarness(b)
	ids := []string{"h1", "h2", "h3", "h4", "h5"}
	var viaScheduler, direct time.Duration
	for i := 0; i < b.N; i++ {
		cluster := newFakeCluster(ids...)
		r := h.run(cluster)
		start := time.Now()
		h.scale(h.rel, map[string]int{"web": 100})
		poll.Until(b, time.Minute, "100 jobs", func() bool { return cluster.live()[key(h.rel, "web")] == 100 })
		viaScheduler += time.Since(start)
		r.stop()
		h.scale(h.rel, map[string]int{"web": 0})

		peer := newFakeCluster(ids...)
		start = time.Now()
		for n := 0; n < 100; n++ {
			hostID := ids[n%len(ids)]
			job := hostjob.ForProcess(hostID, "example", h.rel, h.art, "web")
			if _, err := peer.host(hostID).AddJob(context.Background(), job); err != nil {
				b.Fatal(err)
			}
		}
		direct += time.Since(start)
	}
	b.ReportMetric(float64(viaScheduler.Milliseconds())/float64(b.N), "ms/scale-0-100")
	b.ReportMetric(float64(direct.Microseconds())/1000/float64(b.N), "ms/direct-100-adds")
}

// BenchmarkRound measures one steady-state round over 10 hosts running 200
// jobs, on the in-memory controller and on the real one (skipped under
// -short). A round asks no host anything (the view is kept from their
// event streams), so its time does not grow with the hosts' latency;
// before the hosts' streams, each round listed every host in turn.
func BenchmarkRound(b *testing.B) {
	for _, tc := range []struct {
		name    string
		harness func(testing.TB) *harness
	}{
		{"memory", newHarness},
		{"postgres", newIntegrationHarness},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := tc.harness(b)
			cluster := newFakeCluster("h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9", "h10")
			r := h.run(cluster)
			h.scale(h.rel, map[string]int{"web": 200})
			poll.Until(b, time.Minute, "200 jobs", func() bool { return cluster.live()[key(h.rel, "web")] == 200 })
			r.stop()

			s := New(testConfig(), h.ctrl, cluster, h.logger)
			ctx, cancel := context.WithCancel(context.Background())
			defer s.stopFollowing()
			defer cancel()
			s.syncHosts(ctx)
			poll.Until(b, 10*time.Second, "hosts followed", func() bool {
				for _, v := range s.snapshot(time.Now()) {
					if v.knowledge != Current {
						return false
					}
				}
				return true
			})
			if err := s.round(ctx); err != nil { // reports the 200 jobs once
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.round(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
