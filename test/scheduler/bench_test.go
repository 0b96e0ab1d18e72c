package scheduler_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/scheduler"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// BenchmarkScale20Docker measures scaling a web process from 0 to 20 jobs
// on Docker through the scheduler, until every job is up (its port
// answers), against the peer of 20 bare `docker run -d` of the same image
// in the same run, also until every port answers; it reports the ratio.
func BenchmarkScale20Docker(b *testing.B) {
	c := newCluster(b, scheduler.Config{})
	docker := testdeps.LookPath(b, "docker")
	ctx := context.Background()
	app, art := c.app("bench")
	rel := c.release(app, art, []string{"serve"}, nil)
	var viaScheduler, bare time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		must(b, c.ctrl.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: map[string]int{"web": 20}}))
		poll.Until(b, 2*time.Minute, "20 jobs up", func() bool { return len(c.upJobs(rel)) == 20 })
		viaScheduler += time.Since(start)
		must(b, c.ctrl.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: map[string]int{"web": 0}}))
		poll.Until(b, 2*time.Minute, "0 jobs", func() bool { return len(c.upJobs(rel)) == 0 })

		base := 45000 + i*20
		var ids []string
		start = time.Now()
		for n := 0; n < 20; n++ {
			port := base + n
			out, err := exec.Command(docker, "run", "-d", "--network", "host", "--label", "flynn.test=true",
				"-e", fmt.Sprintf("PORT=%d", port), c.image, "serve").Output()
			if err != nil {
				b.Fatalf("docker run: %v", err)
			}
			ids = append(ids, strings.TrimSpace(string(out)))
		}
		for n := 0; n < 20; n++ {
			addr := fmt.Sprintf("127.0.0.1:%d", base+n)
			poll.Until(b, time.Minute, addr+" answers", func() bool {
				conn, err := net.Dial("tcp", addr)
				if err == nil {
					conn.Close()
				}
				return err == nil
			})
		}
		bare += time.Since(start)
		_ = exec.Command(docker, append([]string{"rm", "-f"}, ids...)...).Run()
	}
	b.ReportMetric(float64(viaScheduler.Milliseconds())/float64(b.N), "ms/scale-0-20")
	b.ReportMetric(float64(bare.Milliseconds())/float64(b.N), "ms/20-docker-run")
	b.ReportMetric(float64(viaScheduler)/float64(bare), "ratio")
}
