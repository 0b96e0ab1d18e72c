package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/discoverdtest"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/syncbuf"
)

// The scheduler's logic runs against the in-memory controller and hosts
// (harness_test.go), so `go test -short` covers it. A few bodies also run
// against the real controller on Postgres (integration_test.go).

func TestScaleUpAndDown(t *testing.T) {
	h := newHarness(t)
	cluster := newFakeCluster("h1", "h2", "h3")
	h.run(cluster)
	h.scale(h.rel, map[string]int{"web": 3, "worker": 1})
	poll.Until(t, 5*time.Second, "web=3 worker=1", func() bool {
		l := cluster.live()
		return l[key(h.rel, "web")] == 3 && l[key(h.rel, "worker")] == 1
	})
	for _, id := range []string{"h1", "h2", "h3"} {
		if n := cluster.host(id).live()[key(h.rel, "web")]; n != 1 {
			t.Errorf("host %s runs %d web jobs, want 1 (spread)", id, n)
		}
	}
	// The controller hears of every job.
	poll.Until(t, 5*time.Second, "controller sees 4 up jobs", func() bool {
		jobs, err := h.ctrl.Jobs(context.Background(), h.app.ID)
		up := 0
		for _, j := range jobs {
			if j.State == controller.JobStateUp {
				up++
			}
		}
		return err == nil && up == 4
	})
	h.scale(h.rel, map[string]int{"web": 1})
	poll.Until(t, 5*time.Second, "web=1 worker=0", func() bool {
		l := cluster.live()
		return l[key(h.rel, "web")] == 1 && l[key(h.rel, "worker")] == 0
	})
}

func TestCrashedJobRestartsWithBackoff(t *testing.T) {
	h := newHarness(t)
	cluster := newFakeCluster("h1")
	h.run(cluster)
	h.scale(h.rel, map[string]int{"web": 1})
	hst := cluster.host("h1")
	poll.Until(t, 5*time.Second, "web=1", func() bool { return hst.live()[key(h.rel, "web")] == 1 })
	killed := hst.kill()
	poll.Until(t, 5*time.Second, "replacement up", func() bool { return hst.live()[key(h.rel, "web")] == 1 })
	t.Logf("replaced %s", killed)

	// A release whose jobs crash at once is retried ever more slowly.
	bad := h.release(h.crash)
	h.scale(bad, map[string]int{"worker": 1})
	before := hst.addCount()
	began := time.Now()
	poll.Until(t, 10*time.Second, "four start attempts", func() bool { return hst.addCount()-before >= 4 })
	// Without backoff, 50 ms rounds make four attempts in 150 ms; with a
	// 200 ms base doubling, the gaps are 200, 400 and 800 ms.
	if took := time.Since(began); took < 1200*time.Millisecond {
		t.Errorf("four attempts took %s, want at least 1.2s (exponential backoff)", took)
	}
}

// A job its host refuses to start (an image the host lacks) is recorded
// as failed with the host's reason, for whoever follows the deployment;
// the host never had it, so no event of the host's would say so.
func TestRefusedStartRecordedAsFailed(t *testing.T) {
	h := newHarness(t)
	cluster := newFakeCluster("h1")
	h.run(cluster)
	missing := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "missing"}
	must(t, h.ctrl.CreateArtifact(t.Context(), missing))
	bad := h.release(missing)
	h.scale(bad, map[string]int{"web": 1})
	var failed *controller.Job
	poll.UntilNil(t, 10*time.Second, "a failed job with the host's reason", func() error {
		jobs, err := h.ctrl.Jobs(t.Context(), h.app.ID)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if j.ReleaseID == bad.ID && j.State == controller.JobStateFailed {
				failed = j
				return nil
			}
		}
		return fmt.Errorf("jobs %v", jobs)
	})
	if failed.Type != "web" || failed.HostID != "h1" || failed.Error != `image "missing" is not on this host` || failed.EndedAt == nil {
		t.Errorf("failed job %+v, want web on h1 with the host's reason", failed)
	}
}

// A deployment of a release whose image its host lacks fails at once,
// with the host's reason, rather than after DeployTimeout; the app goes
// back to its old release.
func TestDeploymentOfAMissingImageFails(t *testing.T) {
	h := newHarness(t)
	missing := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "missing"}
	must(t, h.ctrl.CreateArtifact(t.Context(), missing))
	_, d := failDeployment(t, h, newFakeCluster("h1"), missing)
	if !strings.Contains(d.Error, `failed to start: image "missing" is not on this host`) {
		t.Errorf("failed deployment's reason = %q; want the host's", d.Error)
	}
	if app, err := h.ctrl.App(t.Context(), h.app.ID); err != nil || app.ReleaseID != h.rel.ID {
		t.Fatalf("app after the failed deployment = %+v, %v; want release %s", app, err, h.rel.ID)
	}
}

// failDeployment runs h's scheduler on cluster, deploys h.rel, then a
// release of art, and waits for that deployment to fail; it returns the
// release and its failed deployment. The callers check the reason, which
// tells the host's report from DeployTimeout's (3 s here): the wait need
// not end before it, which a busy machine cannot promise.
func failDeployment(t *testing.T, h *harness, cluster *fakeCluster, art *controller.Artifact) (*controller.Release, *controller.Deployment) {
	t.Helper()
	h.run(cluster)
	ctx := t.Context()
	if _, err := h.ctrl.SetAppRelease(ctx, h.app.ID, h.rel.ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "web=1", func() bool { return cluster.live()[key(h.rel, "web")] == 1 })
	bad := h.release(art)
	if _, err := h.ctrl.SetAppRelease(ctx, h.app.ID, bad.ID); err != nil {
		t.Fatal(err)
	}
	var failed *controller.Deployment
	poll.Until(t, 10*time.Second, "deployment failed", func() bool {
		ds, err := h.ctrl.Deployments(ctx, h.app.ID)
		if err != nil || len(ds) == 0 {
			return false
		}
		failed = latest(ds)
		return failed.NewReleaseID == bad.ID && failed.Status == controller.DeploymentFailed
	})
	return bad, failed
}

func TestOneOffJobStatesReported(t *testing.T) { testOneOffJobStatesReported(t, newHarness(t)) }

// One-off jobs (flynn run, builds) are never planned, but their states
// reach the controller, so they go through up and down with their exit
// status and leave the active list.
func testOneOffJobStatesReported(t *testing.T, h *harness) {
	cluster := newFakeCluster("h1")
	h.run(cluster)
	ctx := context.Background()
	hst := cluster.host("h1")
	job := &host.Job{ID: "h1-oneoff", Artifact: "flynn/slugrunner:test", Metadata: map[string]string{
		controller.JobMetaAppID: h.app.ID, controller.JobMetaReleaseID: h.rel.ID, "flynn.build.commit": "abc",
	}}
	// The controller records it as starting when it places it. (Recorded
	// first here: the store takes any state it is given, so a record
	// landing after the scheduler's report of "up" would move the job back.)
	must(t, h.ctrl.PutJob(ctx, &controller.Job{ID: job.ID, AppID: h.app.ID, ReleaseID: h.rel.ID, HostID: "h1", State: controller.JobStateStarting,
		Meta: map[string]string{"flynn.build.commit": "abc"}}))
	if _, err := hst.AddJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "one-off job reported up", func() bool {
		j, err := h.ctrl.Job(ctx, h.app.ID, job.ID)
		return err == nil && j.State == controller.JobStateUp
	})
	hst.exit(job.ID, 3)
	poll.Until(t, 5*time.Second, "one-off job reported ended", func() bool {
		j, err := h.ctrl.Job(ctx, h.app.ID, job.ID)
		return err == nil && j.State == controller.JobStateCrashed && j.ExitStatus != nil && *j.ExitStatus == 3
	})
	j, _ := h.ctrl.Job(ctx, h.app.ID, job.ID)
	if j.Meta["flynn.build.commit"] != "abc" {
		t.Errorf("job meta = %v; the scheduler's report must keep it", j.Meta)
	}
	if active, err := h.ctrl.ActiveJobs(ctx, h.app.ID); err != nil || len(active) != 0 {
		t.Errorf("ActiveJobs = %v, %v; want none", active, err)
	}
	if hst.addCount() != 1 {
		t.Errorf("host got %d jobs, want only the one-off: the scheduler must not plan it", hst.addCount())
	}
}

func TestOmniRunsOnEveryHost(t *testing.T) {
	h := newHarness(t)
	cluster := newFakeCluster("h1", "h2", "h3")
	h.run(cluster)
	h.scale(h.rel, map[string]int{"agent": 1})
	poll.Until(t, 5*time.Second, "one agent per host", func() bool {
		for _, id := range []string{"h1", "h2", "h3"} {
			if cluster.host(id).live()[key(h.rel, "agent")] != 1 {
				return false
			}
		}
		return true
	})
}

func TestHostLossMovesJobs(t *testing.T) {
	h := newHarness(t)
	cluster := newFakeCluster("h1", "h2", "h3")
	h.run(cluster)
	h.scale(h.rel, map[string]int{"web": 3})
	poll.Until(t, 5*time.Second, "web=3", func() bool { return cluster.live()[key(h.rel, "web")] == 3 })
	cluster.remove("h2")
	poll.Until(t, 5*time.Second, "web=3 on the two hosts left", func() bool { return cluster.live()[key(h.rel, "web")] == 3 })
	for _, id := range []string{"h1", "h3"} {
		if n := cluster.host(id).live()[key(h.rel, "web")]; n < 1 || n > 2 {
			t.Errorf("host %s runs %d web jobs, want 1-2", id, n)
		}
	}
	// The jobs lost with h2 do not stay up in the controller: flynn ps
	// shows the three that run.
	poll.UntilNil(t, 5*time.Second, "the controller's active web jobs are the three that run", func() error {
		jobs, err := h.ctrl.ActiveJobs(context.Background(), h.app.ID)
		if err != nil {
			return err
		}
		up := 0
		for _, j := range jobs {
			if j.HostID == "h2" {
				return fmt.Errorf("job %s of the lost host h2 is still %s", j.ID, j.State)
			}
			if j.Type == "web" && j.State == controller.JobStateUp {
				up++
			}
		}
		if up != 3 {
			return fmt.Errorf("%d web jobs up, want 3", up)
		}
		return nil
	})
}

func TestRestartDoesNotDuplicate(t *testing.T) {
	h := newHarness(t)
	cluster := newFakeCluster("h1", "h2")
	first := h.run(cluster)
	h.scale(h.rel, map[string]int{"web": 3})
	poll.Until(t, 5*time.Second, "web=3", func() bool { return cluster.live()[key(h.rel, "web")] == 3 })
	first.stop()
	adds := cluster.host("h1").addCount() + cluster.host("h2").addCount()

	second := h.run(cluster)
	poll.Until(t, 5*time.Second, "both hosts followed", func() bool {
		k := second.knowledge()
		return k["h1"] == Current && k["h2"] == Current
	})
	second.rounds(5)
	if got := cluster.host("h1").addCount() + cluster.host("h2").addCount(); got != adds {
		t.Errorf("a restarted scheduler started %d more jobs", got-adds)
	}
	if n := cluster.live()[key(h.rel, "web")]; n != 3 {
		t.Errorf("web jobs = %d after restart, want 3", n)
	}
}

func TestOneByOneDeployment(t *testing.T) { testOneByOneDeployment(t, newHarness(t)) }

func testOneByOneDeployment(t *testing.T, h *harness) {
	cluster := newFakeCluster("h1", "h2")
	h.run(cluster)
	ctx := context.Background()
	if _, err := h.ctrl.SetAppRelease(ctx, h.app.ID, h.rel.ID); err != nil {
		t.Fatal(err)
	}
	// The first deploy runs web=1.
	poll.Until(t, 5*time.Second, "first deploy web=1", func() bool { return cluster.live()[key(h.rel, "web")] == 1 })
	h.scale(h.rel, map[string]int{"web": 2})
	poll.Until(t, 5*time.Second, "web=2", func() bool { return cluster.live()[key(h.rel, "web")] == 2 })
	cluster.relog()

	v2 := h.release(h.art)
	if _, err := h.ctrl.SetAppRelease(ctx, h.app.ID, v2.ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "deployment complete", func() bool {
		ds, err := h.ctrl.Deployments(ctx, h.app.ID)
		return err == nil && len(ds) > 0 && latest(ds).Status == controller.DeploymentComplete
	})
	poll.Until(t, 5*time.Second, "only v2 runs", func() bool {
		l := cluster.live()
		return l[key(v2, "web")] == 2 && l[key(h.rel, "web")] == 0
	})
	// One by one: the k-th old job stops only after the k-th new one
	// started, so never fewer than the wanted count run. (A round acts on
	// its hosts concurrently, so a stop on one host and a start on another
	// planned in the same round may come in either order.)
	var seq []string
	starts, stops := 0, 0
	for _, e := range cluster.events() {
		switch e {
		case "start " + v2.ID + " web":
			seq = append(seq, "new")
			starts++
		case "stop " + h.rel.ID + " web":
			seq = append(seq, "old")
			stops++
			if stops > starts {
				t.Errorf("deployment order %v: an old job stopped before a new one replaced it", seq)
			}
		}
	}
	if starts != 2 || stops != 2 {
		t.Errorf("deployment order %v, want two new starts and two old stops", seq)
	}
}

func latest(ds []*controller.Deployment) *controller.Deployment {
	return slices.MaxFunc(ds, func(a, b *controller.Deployment) int { return a.CreatedAt.Compare(b.CreatedAt) })
}

func TestFailingDeploymentRollsBack(t *testing.T) { testFailingDeploymentRollsBack(t, newHarness(t)) }

func testFailingDeploymentRollsBack(t *testing.T, h *harness) {
	cluster := newFakeCluster("h1")
	ctx := context.Background()
	// The crash fails the deployment at once.
	bad, failed := failDeployment(t, h, cluster, h.crash)
	if reason := failed.Error; !strings.Contains(reason, "crashed") || !strings.Contains(reason, "exit status 1") {
		t.Errorf("failed deployment's reason = %q; want the crash and its exit status", reason)
	}
	t.Logf("deployment failed: %s", failed.Error)
	poll.Until(t, 5*time.Second, "old release still serves, bad one runs nothing", func() bool {
		l := cluster.live()
		return l[key(h.rel, "web")] == 1 && l[key(bad, "web")] == 0
	})
	// The app is back at its old release, with its old formation.
	if app, err := h.ctrl.App(ctx, h.app.ID); err != nil || app.ReleaseID != h.rel.ID {
		t.Fatalf("app after the failed deployment = %+v, %v; want release %s", app, err, h.rel.ID)
	}
	if f, err := h.ctrl.Formation(ctx, h.app.ID, h.rel.ID); err != nil || f.Processes["web"] != 1 {
		t.Fatalf("old formation = %+v, %v; want web=1", f, err)
	}
	// A finished deployment does not change any more.
	if _, err := h.ctrl.UpdateDeployment(ctx, h.app.ID, failed.ID, controller.DeploymentUpdate{Status: controller.DeploymentComplete}); err == nil {
		t.Error("a failed deployment was updated to complete")
	}
}

// TestOnlyTheLeaderSchedules needs discoverd on embedded etcd, so it
// skips under -short; the controller is the in-memory one.
func TestOnlyTheLeaderSchedules(t *testing.T) {
	h := newHarness(t)
	d := discoverdtest.New(t, discoverdtest.Options{})
	cluster := newFakeCluster("h1")
	ctx := context.Background()

	type sched struct {
		cancel context.CancelFunc
		done   chan error
		rounds *atomicCounter
	}
	start := func(port int) *sched {
		sctx, cancel := context.WithCancel(ctx)
		sc := &sched{cancel: cancel, done: make(chan error, 1), rounds: &atomicCounter{}}
		inst := &discoverd.Instance{Addr: "127.0.0.1:" + itoa(port), Proto: "http"}
		go func() {
			sc.done <- RunLeader(sctx, d.Client(), inst, h.logger, func(ctx context.Context) error {
				sc.rounds.add()
				return New(testConfig(), h.ctrl, cluster, h.logger).Run(ctx)
			})
		}()
		return sc
	}
	first := start(1)
	poll.Until(t, 10*time.Second, "first scheduler leads", func() bool { return first.rounds.get() == 1 })
	second := start(2)
	h.scale(h.rel, map[string]int{"web": 2})
	poll.Until(t, 5*time.Second, "web=2", func() bool { return cluster.live()[key(h.rel, "web")] == 2 })
	if second.rounds.get() != 0 {
		t.Fatal("the standby scheduler acted while the first led")
	}
	first.cancel()
	<-first.done
	poll.Until(t, 10*time.Second, "standby takes over", func() bool { return second.rounds.get() == 1 })
	cluster.host("h1").kill()
	poll.Until(t, 5*time.Second, "the new leader replaces a crashed job", func() bool {
		return cluster.live()[key(h.rel, "web")] == 2
	})
	second.cancel()
	<-second.done
}

func TestAllAtOnceDeployment(t *testing.T) {
	h := newHarness(t)
	cluster := newFakeCluster("h1", "h2")
	h.run(cluster)
	ctx := context.Background()
	strategy := controller.StrategyAllAtOnce
	if _, err := h.ctrl.UpdateApp(ctx, h.app.ID, controller.AppUpdate{Strategy: &strategy}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ctrl.SetAppRelease(ctx, h.app.ID, h.rel.ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "first deploy web=1", func() bool { return cluster.live()[key(h.rel, "web")] == 1 })
	h.scale(h.rel, map[string]int{"web": 3})
	poll.Until(t, 5*time.Second, "web=3", func() bool { return cluster.live()[key(h.rel, "web")] == 3 })
	v2 := h.release(h.art)
	if _, err := h.ctrl.SetAppRelease(ctx, h.app.ID, v2.ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "deployment complete", func() bool {
		ds, err := h.ctrl.Deployments(ctx, h.app.ID)
		return err == nil && latest(ds).NewReleaseID == v2.ID && latest(ds).Status == controller.DeploymentComplete
	})
	poll.Until(t, 5*time.Second, "only v2 runs", func() bool {
		l := cluster.live()
		return l[key(v2, "web")] == 3 && l[key(h.rel, "web")] == 0
	})
	// All at once: the three new jobs start before any old one stops.
	events := cluster.events()
	startsBeforeStop := 0
	for _, e := range events {
		if e == "stop "+h.rel.ID+" web" {
			break
		}
		if e == "start "+v2.ID+" web" {
			startsBeforeStop++
		}
	}
	if startsBeforeStop != 3 {
		t.Errorf("%d new jobs started before the first old one stopped, want 3 (events %v)", startsBeforeStop, events)
	}
}

// TestScaleDuringDeployment checks that a count raised on the new release
// while it deploys (`flynn scale` from another terminal) is not undone by
// the deployment's next step.
func TestScaleDuringDeployment(t *testing.T) { testScaleDuringDeployment(t, newHarness(t)) }

func testScaleDuringDeployment(t *testing.T, h *harness) {
	cluster := newFakeCluster("h1")
	h.run(cluster)
	ctx := context.Background()
	if _, err := h.ctrl.SetAppRelease(ctx, h.app.ID, h.rel.ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "first deploy web=1", func() bool { return cluster.live()[key(h.rel, "web")] == 1 })
	h.scale(h.rel, map[string]int{"web": 1, "worker": 1})
	poll.Until(t, 5*time.Second, "worker=1", func() bool { return cluster.live()[key(h.rel, "worker")] == 1 })

	// The host stops answering, so the deployment waits in its web step.
	v2 := h.release(h.art)
	cluster.host("h1").hang()
	if _, err := h.ctrl.SetAppRelease(ctx, h.app.ID, v2.ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "the deployment's web step", func() bool {
		f, err := h.ctrl.Formation(ctx, h.app.ID, v2.ID)
		return err == nil && f.Processes["web"] == 1
	})
	h.scale(v2, map[string]int{"web": 3})
	cluster.host("h1").unhang()

	poll.Until(t, 10*time.Second, "deployment complete", func() bool {
		ds, err := h.ctrl.Deployments(ctx, h.app.ID)
		return err == nil && len(ds) > 0 && latest(ds).Status == controller.DeploymentComplete
	})
	f, err := h.ctrl.Formation(ctx, h.app.ID, v2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if f.Processes["web"] != 3 || f.Processes["worker"] != 1 {
		t.Errorf("formation after the deployment = %v, want web=3 (scaled during it) and worker=1", f.Processes)
	}
	poll.Until(t, 5*time.Second, "v2 runs web=3 worker=1", func() bool {
		l := cluster.live()
		return l[key(v2, "web")] == 3 && l[key(v2, "worker")] == 1 && l[key(h.rel, "web")] == 0
	})
}

// TestControllerDownKeepsFormations checks that the scheduler starts a
// crashed job again while the controller cannot list formations: the
// crashed job may be the controller's own Postgres, which nothing else
// would start.
func TestControllerDownKeepsFormations(t *testing.T) {
	h := newHarness(t)
	ctrl := h.ctrl.(*fakeController)
	cluster := newFakeCluster("h1")
	first := h.run(cluster)
	h.scale(h.rel, map[string]int{"web": 2})
	poll.Until(t, 5*time.Second, "web=2", func() bool { return cluster.live()[key(h.rel, "web")] == 2 })
	// A scheduler that never started these jobs (as bootstrap starts the
	// controller's Postgres) must still be able to start them again.
	first.stop()
	second := h.run(cluster)
	second.rounds(3)

	ctrl.setDown(errors.New("service postgres has no instances, so no leader"))
	killed := cluster.host("h1").kill()
	poll.Until(t, 10*time.Second, "web=2 again with the controller down", func() bool { return cluster.live()[key(h.rel, "web")] == 2 })

	ctrl.setDown(nil)
	poll.UntilNil(t, 10*time.Second, "the crash reported once the controller answers", func() error {
		jobs, err := ctrl.ActiveJobs(context.Background(), h.app.ID)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if j.ID == killed {
				return fmt.Errorf("job %s still %s", killed, j.State)
			}
		}
		return nil
	})
}

// TestDeploymentsInARow checks deployments made while the app's previous
// one has not run yet: each replaces what the app runs when it starts,
// with its counts, whether the one before completed or failed, and in the
// end only the last release's formation is left.
func TestDeploymentsInARow(t *testing.T) { testDeploymentsInARow(t, newHarness(t)) }

func testDeploymentsInARow(t *testing.T, h *harness) {
	cluster := newFakeCluster("h1")
	h.run(cluster)
	ctx := context.Background()
	if _, err := h.ctrl.SetAppRelease(ctx, h.app.ID, h.rel.ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "first deploy web=1", func() bool { return cluster.live()[key(h.rel, "web")] == 1 })
	h.scale(h.rel, map[string]int{"web": 2})
	poll.Until(t, 5*time.Second, "web=2", func() bool { return cluster.live()[key(h.rel, "web")] == 2 })

	for _, failing := range []bool{false, true} {
		// Two releases in a row while the host does not answer: the second
		// deployment is made before the first has started. With failing,
		// the first one's processes crash.
		art := h.art
		if failing {
			art = h.crash
		}
		first, second := h.release(art), h.release(h.art)
		cluster.host("h1").hang()
		if _, err := h.ctrl.SetAppRelease(ctx, h.app.ID, first.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := h.ctrl.SetAppRelease(ctx, h.app.ID, second.ID); err != nil {
			t.Fatal(err)
		}
		cluster.host("h1").unhang()
		poll.UntilNil(t, 20*time.Second, "both deployments finished", func() error {
			ds, err := h.ctrl.Deployments(ctx, h.app.ID)
			if err != nil {
				return err
			}
			for _, d := range ds {
				if d.Status == controller.DeploymentPending || d.Status == controller.DeploymentRunning {
					return fmt.Errorf("deployment to %s is %s", d.NewReleaseID, d.Status)
				}
			}
			return nil
		})
		poll.UntilNil(t, 10*time.Second, "the second release runs web=2, nothing else", func() error {
			all, err := h.ctrl.AllFormations(ctx)
			if err != nil {
				return err
			}
			var fs []*controller.Formation
			for _, f := range all {
				if f.AppID == h.app.ID {
					fs = append(fs, f)
				}
			}
			if len(fs) != 1 || fs[0].ReleaseID != second.ID || fs[0].Processes["web"] != 2 {
				var got []string
				for _, f := range fs {
					got = append(got, fmt.Sprintf("%s %v", f.ReleaseID, f.Processes))
				}
				ds, _ := h.ctrl.Deployments(ctx, h.app.ID)
				for _, d := range ds {
					got = append(got, fmt.Sprintf("deployment %s→%s %s %v %s", d.OldReleaseID, d.NewReleaseID, d.Status, d.Processes, d.Error))
				}
				return fmt.Errorf("formations %v, want only %s web=2 (first %s, failing %v)", got, second.ID, first.ID, failing)
			}
			live := cluster.live()
			if live[key(second, "web")] != 2 || total(live) != 2 {
				return fmt.Errorf("live %v", live)
			}
			return nil
		})
	}
}

// A job whose app was deleted while it ran is not reported again at every
// tick: the controller's not_found is final.
func TestJobOfADeletedAppIsNotReportedForEver(t *testing.T) {
	var logs syncbuf.Buffer
	h := setupHarness(t, newFakeController(), slog.New(slog.NewTextHandler(&logs, nil)))
	cluster := newFakeCluster("h1")
	h.run(cluster)
	ctx := context.Background()
	job := &host.Job{ID: "h1-orphan", Artifact: "flynn/slugrunner:test", Metadata: map[string]string{
		controller.JobMetaAppID: "deleted-app", controller.JobMetaReleaseID: "deleted-release",
	}}
	if _, err := cluster.host("h1").AddJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	gone := func() int { return strings.Count(logs.String(), "job of a deleted app or release") }
	// Its states until up are each refused once.
	poll.Until(t, 5*time.Second, "the orphan job's report of up refused", func() bool {
		return strings.Contains(logs.String(), "job.id=h1-orphan app.id=deleted-app state=up")
	})
	n := gone()
	// Ten ticks: before, each one tried again and logged a warning.
	poll.Holds(t, 10*testConfig().Interval, "no report tried again", func() bool {
		return gone() == n && !strings.Contains(logs.String(), "report job state failed")
	})
}

// TestExclusiveTypeIsReplacedStopFirst checks that a deployment replaces
// the jobs of a type with volumes (discoverd's, Postgres's) by stopping
// each old job before the new one starts on its host, by either strategy,
// where other types start the new job first: two processes must never
// own one volume's data at once.
func TestExclusiveTypeIsReplacedStopFirst(t *testing.T) {
	for _, strategy := range []string{controller.StrategyOneByOne, controller.StrategyAllAtOnce} {
		t.Run(strategy, func(t *testing.T) {
			h := newHarness(t)
			cluster := newFakeCluster("h1", "h2")
			h.run(cluster)
			ctx := context.Background()
			if _, err := h.ctrl.UpdateApp(ctx, h.app.ID, controller.AppUpdate{Strategy: &strategy}); err != nil {
				t.Fatal(err)
			}
			withData := func() *controller.Release {
				rel := &controller.Release{AppID: h.app.ID, ArtifactID: h.art.ID, Processes: map[string]controller.ProcessType{
					"data": {Cmd: []string{"start", "data"}, Omni: true, Volumes: []controller.Volume{{Name: "data", Target: "/data"}}},
					"web":  {Cmd: []string{"start", "web"}},
				}}
				must(t, h.ctrl.CreateRelease(ctx, rel))
				return rel
			}
			v1 := withData()
			if _, err := h.ctrl.SetAppRelease(ctx, h.app.ID, v1.ID); err != nil {
				t.Fatal(err)
			}
			poll.Until(t, 5*time.Second, "first deploy web=1", func() bool { return cluster.live()[key(v1, "web")] == 1 })
			h.scale(v1, map[string]int{"web": 1, "data": 1})
			poll.Until(t, 5*time.Second, "data on both hosts", func() bool { return cluster.live()[key(v1, "data")] == 2 })

			for _, id := range []string{"h1", "h2"} {
				fh := cluster.host(id)
				fh.mu.Lock()
				fh.events = nil
				fh.mu.Unlock()
			}
			v2 := withData()
			if _, err := h.ctrl.SetAppRelease(ctx, h.app.ID, v2.ID); err != nil {
				t.Fatal(err)
			}
			poll.Until(t, 10*time.Second, "deployment complete", func() bool {
				ds, err := h.ctrl.Deployments(ctx, h.app.ID)
				return err == nil && latest(ds).NewReleaseID == v2.ID && latest(ds).Status == controller.DeploymentComplete
			})
			poll.Until(t, 5*time.Second, "only v2 runs", func() bool {
				l := cluster.live()
				return l[key(v2, "data")] == 2 && l[key(v1, "data")] == 0 && l[key(v2, "web")] == 1 && l[key(v1, "web")] == 0
			})
			for _, id := range []string{"h1", "h2"} {
				fh := cluster.host(id)
				fh.mu.Lock()
				events := slices.Clone(fh.events)
				fh.mu.Unlock()
				stop := slices.Index(events, "stop "+v1.ID+" data")
				start := slices.Index(events, "start "+v2.ID+" data")
				if stop < 0 || start < 0 || start < stop {
					t.Errorf("host %s: the new data job started before the old one stopped, or one is missing: %v", id, events)
				}
			}
		})
	}
}
