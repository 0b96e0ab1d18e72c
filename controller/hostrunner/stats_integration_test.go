package hostrunner_test

import (
	"testing"

	"github.com/openflynn/flynn/controller"
)

// `flynn ps`'s path end to end: the controller asks the real host, which
// reads Docker, for a one-off job's CPU and memory.
func TestJobStatsOnRealHost(t *testing.T) {
	s := newStack(t)
	app := s.app(t)
	ctx := t.Context()
	job, err := s.client.RunJob(ctx, app.Name, &controller.NewJob{Args: []string{"spin", "16"}})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := s.client.JobsWithStats(ctx, app.Name, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].ID != job.ID || jobs[0].Stats == nil {
		t.Fatalf("jobs with stats = %+v; want the job, with its stats", jobs)
	}
	// The job may not have touched all its memory yet at the first
	// reading, but has more than an idle process's.
	if st := jobs[0].Stats; st.MemoryBytes < 1<<20 || st.CPUPercent < 0 {
		t.Errorf("stats = %+v; want some memory in use", st)
	}
}
