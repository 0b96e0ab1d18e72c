package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/poll"
)

// liveEnvs returns the env of each live job of "release type" k on the
// host, in start order.
func (h *fakeHost) liveEnvs(k string) []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]string
	for _, id := range h.order {
		j := h.jobs[id]
		if live(j.State) && j.Job.Metadata[controller.JobMetaReleaseID]+" "+j.Job.Metadata[controller.JobMetaType] == k {
			out = append(out, j.Job.Config.Env)
		}
	}
	return out
}

func TestBuildEnvReachesNextJob(t *testing.T) { testBuildEnvReachesNextJob(t, newHarness(t)) }

// testBuildEnvReachesNextJob: a change to the cluster's build settings
// reaches the next job the scheduler starts of an app that is not a
// system app, leaves the running ones alone, and never reaches a system
// app's.
func testBuildEnvReachesNextJob(t *testing.T, h *harness) {
	ctx := context.Background()
	cluster := newFakeCluster("h1")
	r := h.run(cluster)
	hst := cluster.host("h1")
	web := key(h.rel, "web")
	h.scale(h.rel, map[string]int{"web": 1})
	poll.Until(t, 5*time.Second, "web=1", func() bool { return hst.live()[web] == 1 })
	if env := hst.liveEnvs(web)[0]; env["GOPROXY"] != "" {
		t.Fatalf("first job has GOPROXY=%q before any build env", env["GOPROXY"])
	}

	if _, err := h.ctrl.PatchBuildEnv(ctx, controller.BuildEnvPatch{Env: &controller.EnvPatch{Set: map[string]string{"GOPROXY": "https://proxy.test"}}}); err != nil {
		t.Fatal(err)
	}
	adds := hst.addCount()
	r.rounds(3)
	if n := hst.addCount(); n != adds {
		t.Fatalf("the change started %d jobs; running jobs must be left alone", n-adds)
	}

	h.scale(h.rel, map[string]int{"web": 2})
	poll.Until(t, 5*time.Second, "web=2", func() bool { return hst.live()[web] == 2 })
	envs := hst.liveEnvs(web)
	if envs[0]["GOPROXY"] != "" || envs[1]["GOPROXY"] != "https://proxy.test" {
		t.Errorf("GOPROXY of the old job %q, of the new one %q; want none, then the cluster's", envs[0]["GOPROXY"], envs[1]["GOPROXY"])
	}

	sys := &controller.App{Name: "platform", System: true}
	must(t, h.ctrl.CreateApp(ctx, sys))
	sysRel := &controller.Release{AppID: sys.ID, ArtifactID: h.art.ID, Processes: map[string]controller.ProcessType{"api": {Cmd: []string{"serve"}}}}
	must(t, h.ctrl.CreateRelease(ctx, sysRel))
	must(t, h.ctrl.PutFormation(ctx, &controller.Formation{AppID: sys.ID, ReleaseID: sysRel.ID, Processes: map[string]int{"api": 1}}))
	poll.Until(t, 5*time.Second, "the system app's job", func() bool { return hst.live()[key(sysRel, "api")] == 1 })
	if v, ok := hst.liveEnvs(key(sysRel, "api"))[0]["GOPROXY"]; ok {
		t.Errorf("the system app's job has GOPROXY=%q; system apps get nothing of the build env", v)
	}
}

// TestBuildEnvReadOnlyForStarts: the settings are read in rounds that
// start a job of an app, not in every round.
func TestBuildEnvReadOnlyForStarts(t *testing.T) {
	h := newHarness(t)
	ctrl := h.ctrl.(*fakeController)
	cluster := newFakeCluster("h1")
	r := h.run(cluster)
	h.scale(h.rel, map[string]int{"web": 1})
	poll.Until(t, 5*time.Second, "web=1", func() bool { return cluster.live()[key(h.rel, "web")] == 1 })
	r.rounds(2)
	reads := ctrl.buildEnvReadCount()
	r.rounds(5)
	if n := ctrl.buildEnvReadCount() - reads; n != 0 {
		t.Errorf("%d reads of the build env in 5 rounds that started nothing, want 0", n)
	}
}
