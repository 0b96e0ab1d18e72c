package scheduler_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/scheduler"
	"github.com/openflynn/flynn/pkg/poll"
)

// TestSchedulerOnDocker walks the scheduler through what users do: deploy,
// scale to three, survive a container killed behind its back, deploy a new
// release one by one under load without a failed request, and roll back a
// release that crashes on start.
func TestSchedulerOnDocker(t *testing.T) {
	c := newCluster(t, scheduler.Config{DeployTimeout: 15 * time.Second})
	ctx := context.Background()
	app, art := c.app("sched")
	v1 := c.release(app, art, []string{"serve"}, map[string]string{"VERSION": "1"})

	// First deploy: web=1, then scale to 3.
	if _, err := c.ctrl.SetAppRelease(ctx, app.ID, v1.ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "first deploy runs web=1", func() bool { return len(c.upJobs(v1)) == 1 })
	must(t, c.ctrl.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: v1.ID, Processes: map[string]int{"web": 3}}))
	took := poll.Until(t, 30*time.Second, "web=3 up", func() bool { return len(c.upJobs(v1)) == 3 })
	t.Logf("scaled 1 → 3 in %s", took.Round(time.Millisecond))

	// Registered, and the router spreads requests over all three.
	ports := map[string]bool{}
	poll.Until(t, 10*time.Second, "router reaches 3 different ports", func() bool {
		status, body, err := c.get("sched.test")
		if err == nil && status == 200 {
			ports[body] = true
		}
		return len(ports) == 3
	})

	// A container killed behind the cluster's back is replaced. The time
	// is logged, not asserted: starting a job took 10 s in CI beside the
	// race tests, where it takes 1 s alone.
	victim := c.upJobs(v1)[0]
	killed := time.Now()
	must(t, c.docker.ContainerKill(ctx, victim.ContainerID, "KILL"))
	poll.Until(t, 30*time.Second, "replacement up", func() bool {
		up := c.upJobs(v1)
		if len(up) != 3 {
			return false
		}
		for _, j := range up {
			if j.Job.ID == victim.Job.ID {
				return false
			}
		}
		return true
	})
	t.Logf("killed container replaced in %s", time.Since(killed).Round(time.Millisecond))

	// A one-by-one deployment under a request loop: no request fails.
	var (
		stop     atomic.Bool
		requests atomic.Int64
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				status, body, err := c.get("sched.test")
				requests.Add(1)
				if err != nil || status != 200 {
					mu.Lock()
					failures = append(failures, body+" "+errString(err))
					mu.Unlock()
				}
			}
		}()
	}
	v2 := c.release(app, art, []string{"serve"}, map[string]string{"VERSION": "2"})
	if _, err := c.ctrl.SetAppRelease(ctx, app.ID, v2.ID); err != nil {
		t.Fatal(err)
	}
	took = poll.Until(t, 60*time.Second, "deployment complete", func() bool {
		d := c.latestDeployment(app)
		return d != nil && d.NewReleaseID == v2.ID && d.Status == controller.DeploymentComplete
	})
	poll.Until(t, 15*time.Second, "only v2 runs", func() bool { return len(c.upJobs(v2)) == 3 && len(c.upJobs(v1)) == 0 })
	stop.Store(true)
	wg.Wait()
	t.Logf("one-by-one deployment of 3 jobs took %s; %d requests during it, %d failed", took.Round(time.Millisecond), requests.Load(), len(failures))
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed during the deployment, e.g. %q", len(failures), requests.Load(), failures[0])
	}
	if requests.Load() < 50 {
		t.Errorf("only %d requests ran during the deployment; the loop did not exercise it", requests.Load())
	}

	// A release that crashes on start is rolled back; v2 keeps serving.
	bad := c.release(app, art, []string{"exit", "3"}, nil)
	if _, err := c.ctrl.SetAppRelease(ctx, app.ID, bad.ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 60*time.Second, "bad deployment failed", func() bool {
		d := c.latestDeployment(app)
		return d != nil && d.NewReleaseID == bad.ID && d.Status == controller.DeploymentFailed
	})
	t.Logf("bad deployment failed: %s", c.latestDeployment(app).Error)
	poll.Until(t, 15*time.Second, "v2 still runs 3, bad runs none", func() bool { return len(c.upJobs(v2)) == 3 && len(c.upJobs(bad)) == 0 })
	if status, _, err := c.get("sched.test"); err != nil || status != 200 {
		t.Errorf("after the rollback the app answers %d, %v", status, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
