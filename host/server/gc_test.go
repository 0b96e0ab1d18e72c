package server

import (
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/pkg/random"
)

// TestGarbageCollectionAPI: POST /host/gc through the client lists the
// host's exited job containers; a dry run removes none, a run removes the
// oldest beyond the bound, whose job stays inspectable. No image is in
// the collector's scope here (a repository of the test's own), so that it
// never touches the images of a cluster on the same engine.
func TestGarbageCollectionAPI(t *testing.T) {
	h := newTestHost(t, func(c *daemon.Config) {
		c.GC.KeepExited = 1
		c.GC.MinAge = time.Nanosecond
		c.GC.ImageScope = "flynn-gctest-" + random.Hex(4) + "/"
	})
	var jobs []*host.ActiveJob
	for range 2 {
		j := h.add(h.job("exit", "0"))
		jobs = append(jobs, h.waitState(j.Job.ID, host.StateDown))
	}
	ctx := ctxT(t)
	for _, dryRun := range []bool{true, false} {
		rep, err := h.c.CollectGarbage(ctx, dryRun)
		if err != nil {
			t.Fatal(err)
		}
		if rep.DryRun != dryRun || len(rep.Images) != 0 || len(rep.Containers) != 2 {
			t.Fatalf("dry run %v: report %+v; want 2 containers, no image", dryRun, rep)
		}
		if c := rep.Containers[0]; c.JobID != jobs[1].Job.ID || c.Remove {
			t.Errorf("dry run %v: newest %+v; want job %s kept", dryRun, c, jobs[1].Job.ID)
		}
		if c := rep.Containers[1]; c.JobID != jobs[0].Job.ID || !c.Remove || c.Error != "" {
			t.Errorf("dry run %v: oldest %+v; want job %s removed", dryRun, c, jobs[0].Job.ID)
		}
		_, err = h.docker.ContainerInspect(ctx, jobs[0].ContainerID)
		if gone := err != nil; gone != !dryRun {
			t.Errorf("dry run %v: the oldest container gone: %v (%v)", dryRun, gone, err)
		}
	}
	if _, err := h.c.GetJob(ctx, jobs[0].Job.ID); err != nil {
		t.Errorf("the job of a removed container: %v; want it still inspectable", err)
	}
	if _, err := h.docker.ContainerInspect(ctx, jobs[1].ContainerID); err != nil {
		t.Errorf("the newest container: %v", err)
	}
}
