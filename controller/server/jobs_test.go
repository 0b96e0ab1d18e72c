package server

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/hostjob"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func TestJobs(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client
	app, other := h.app(t, "jobs"), h.app(t, "other")
	rel, rel2, otherRel := h.release(t, app, nil), h.release(t, app, nil), h.release(t, other, nil)

	started := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	j := &controller.Job{ID: "host1-aaa", AppID: app.Name, ReleaseID: rel.ID, Type: "web", HostID: "host1", State: controller.JobStateUp, StartedAt: &started}
	if err := c.PutJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	exit := 1
	if err := c.PutJob(ctx, &controller.Job{ID: "host1-aaa", AppID: app.ID, ReleaseID: rel.ID, Type: "web", HostID: "host1", State: controller.JobStateCrashed, ExitStatus: &exit}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Job(ctx, app.ID, "host1-aaa")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != controller.JobStateCrashed || got.ExitStatus == nil || *got.ExitStatus != 1 || got.StartedAt == nil || !got.StartedAt.Equal(started) {
		t.Fatalf("job = %+v, want crashed, exit 1, start time kept", got)
	}
	if list, err := c.Jobs(ctx, app.Name); err != nil || len(list) != 1 {
		t.Fatalf("Jobs = %v, %v; want 1", list, err)
	}
	// A state never moves back: a late "starting" does not undo "crashed".
	if err := c.PutJob(ctx, &controller.Job{ID: "host1-aaa", AppID: app.ID, ReleaseID: rel.ID, Type: "web", HostID: "host1", State: controller.JobStateStarting}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Job(ctx, app.ID, "host1-aaa"); err != nil || got.State != controller.JobStateCrashed {
		t.Fatalf("after a late report the job is %+v, %v; want still crashed", got, err)
	}
	// Jobs that ended leave the active list; the full list keeps them.
	if err := c.PutJob(ctx, &controller.Job{ID: "host1-eee", AppID: app.ID, ReleaseID: rel.ID, HostID: "host1", State: controller.JobStateUp}); err != nil {
		t.Fatal(err)
	}
	if list, err := c.ActiveJobs(ctx, app.Name); err != nil || len(list) != 1 || list[0].ID != "host1-eee" {
		t.Fatalf("ActiveJobs = %v, %v; want only host1-eee", list, err)
	}
	if list, err := c.Jobs(ctx, app.Name); err != nil || len(list) != 2 {
		t.Fatalf("Jobs = %v, %v; want 2", list, err)
	}
	wantCode(t, rawRequest(t, h, "GET", "/apps/"+app.ID+"/jobs?active=maybe", "", nil, nil), httpjson.CodeValidation, "active")
	errs := []struct {
		name  string
		err   error
		code  httpjson.Code
		field string
	}{
		{"another app's release", c.PutJob(ctx, &controller.Job{ID: "host1-bbb", AppID: app.ID, ReleaseID: otherRel.ID, State: "up"}), httpjson.CodeValidation, "release"},
		{"moves release", c.PutJob(ctx, &controller.Job{ID: "host1-aaa", AppID: app.ID, ReleaseID: rel2.ID, State: "up"}), httpjson.CodeConflict, "release"},
		{"bad state", c.PutJob(ctx, &controller.Job{ID: "host1-ccc", AppID: app.ID, ReleaseID: rel.ID, State: "zombie"}), httpjson.CodeValidation, "state"},
		{"missing app", c.PutJob(ctx, &controller.Job{ID: "host1-ddd", AppID: "nope", ReleaseID: rel.ID, State: "up"}), httpjson.CodeNotFound, ""},
		{"missing job", second(c.Job(ctx, app.ID, "host1-zzz")), httpjson.CodeNotFound, ""},
		{"job of another app", second(c.Job(ctx, other.ID, "host1-aaa")), httpjson.CodeNotFound, ""},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.err, tt.code, tt.field) })
	}
}

func TestRunJob(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client
	app := h.app(t, "oneoff")
	wantCode(t, second(c.RunJob(ctx, app.ID, &controller.NewJob{Args: []string{"true"}})), httpjson.CodeValidation, "release")
	rel := h.release(t, app, map[string]string{"A": "release", "B": "release"})
	if _, err := c.SetAppRelease(ctx, app.ID, rel.ID); err != nil {
		t.Fatal(err)
	}

	job, err := c.RunJob(ctx, app.Name, &controller.NewJob{Type: "worker", Env: map[string]string{"B": "request"}})
	if err != nil {
		t.Fatal(err)
	}
	if job.ID == "" || job.AppID != app.ID || job.ReleaseID != rel.ID || job.HostID != "host1" {
		t.Fatalf("job = %+v", job)
	}
	specs := h.runner.ran()
	if len(specs) != 1 {
		t.Fatalf("runner ran %d jobs, want 1", len(specs))
	}
	spec := specs[0]
	if spec.Env["A"] != "release" || spec.Env["B"] != "request" || spec.Artifact.ID != rel.ArtifactID || spec.Job.Args[1] != "worker" {
		t.Fatalf("spec = %+v, job %+v: want release env overridden by request, artifact and the worker's cmd", spec, spec.Job)
	}
	if stored, err := c.Job(ctx, app.ID, job.ID); err != nil || stored.State != controller.JobStateStarting {
		t.Fatalf("stored job = %+v, %v", stored, err)
	}
	wantCode(t, second(c.RunJob(ctx, app.ID, &controller.NewJob{Type: "clock"})), httpjson.CodeValidation, "type")

	// Attached: what we write reaches the job, what it writes reaches us.
	attached, err := c.RunJobAttached(ctx, app.ID, &controller.NewJob{Args: []string{"cat"}, TTY: true})
	if err != nil {
		t.Fatal(err)
	}
	if attached.JobID == "" {
		t.Fatal("attached job has no id")
	}
	if _, err := attached.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(attached, buf); err != nil || string(buf) != "HELLO" {
		t.Fatalf("read %q, %v; want HELLO", buf, err)
	}
	attached.Close()
	h.runner.wg.Wait() // the fake job ends when the controller detaches
	if _, err := c.Job(ctx, app.ID, attached.JobID); err != nil {
		t.Fatalf("attached job not recorded: %v", err)
	}

	h.runner.mu.Lock()
	h.runner.fail = errors.New("no hosts")
	h.runner.mu.Unlock()
	wantCode(t, second(c.RunJob(ctx, app.ID, &controller.NewJob{})), httpjson.CodeUnknown, "")
}

// TestRunJobArtifact: a one-off job may run another artifact (a tool's
// image) with the app's env, and replace the image's entrypoint; an
// artifact the controller does not have is refused before anything runs.
func TestRunJobArtifact(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client
	app := h.app(t, "withdb")
	tools := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "flynn/postgres-api:test"}
	if err := c.CreateArtifact(ctx, tools); err != nil {
		t.Fatal(err)
	}
	// Config only, as `flynn resource add` leaves an app not yet pushed:
	// its own artifact cannot run, a named one can.
	cfg := &controller.Release{AppID: app.ID, Env: map[string]string{"PGDATABASE": "withdb"}}
	if err := c.CreateRelease(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetAppRelease(ctx, app.ID, cfg.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, second(c.RunJob(ctx, app.ID, &controller.NewJob{Args: []string{"true"}})), httpjson.CodeValidation, "release")

	req := &controller.NewJob{ArtifactID: tools.ID, Entrypoint: []string{"pg_dump"}, Args: []string{"--format=custom"}}
	job, err := c.RunJob(ctx, app.Name, req)
	if err != nil {
		t.Fatal(err)
	}
	// The record shows the command as it runs, entrypoint first.
	if stored, err := c.Job(ctx, app.ID, job.ID); err != nil || !slices.Equal(stored.Args, []string{"pg_dump", "--format=custom"}) {
		t.Fatalf("stored job = %+v, %v; want args pg_dump --format=custom", stored, err)
	}
	specs := h.runner.ran()
	if len(specs) != 1 {
		t.Fatalf("runner ran %d jobs, want 1", len(specs))
	}
	spec := specs[0]
	hj := spec.HostJob("host1")
	if spec.Artifact.ID != tools.ID || hj.Artifact != tools.URI || !slices.Equal(hj.Config.Entrypoint, []string{"pg_dump"}) ||
		!slices.Equal(hj.Config.Args, []string{"--format=custom"}) || hj.Config.Env["PGDATABASE"] != "withdb" {
		t.Fatalf("host job = %+v, config %+v: want the tools' image, entrypoint pg_dump, its args and the app's env", hj, hj.Config)
	}
	if hj.Config.HostNetwork || hj.Config.Resources.Memory != hostjob.DefaultMemory || hj.Metadata[controller.JobMetaAppID] != app.ID {
		t.Fatalf("host job config %+v, metadata %v: want a job of the app on the app network with the default limits", hj.Config, hj.Metadata)
	}

	errs := []struct {
		name  string
		req   *controller.NewJob
		field string
	}{
		{"unknown artifact", &controller.NewJob{ArtifactID: "5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c"}, "artifact"},
		{"artifact not an id", &controller.NewJob{ArtifactID: "flynn/postgres-api"}, "artifact"},
		{"entrypoint without a program", &controller.NewJob{ArtifactID: tools.ID, Entrypoint: []string{"", "x"}}, "entrypoint.0"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			err := second(c.RunJob(ctx, app.ID, tt.req))
			wantCode(t, err, httpjson.CodeValidation, tt.field)
			if tt.name == "unknown artifact" && !strings.Contains(err.Error(), "does not exist") {
				t.Errorf("error %q does not say the artifact does not exist", err)
			}
		})
	}
	// An explicit empty entrypoint is refused too (the Go client never
	// sends one: it is omitted).
	wantCode(t, rawRequest(t, h, "POST", "/apps/"+app.ID+"/jobs", "application/json", []byte(`{"artifact":"`+tools.ID+`","entrypoint":[]}`), nil), httpjson.CodeValidation, "entrypoint")
	if n := len(h.runner.ran()); n != 1 {
		t.Fatalf("runner ran %d jobs after the refusals, want still 1", n)
	}
}
