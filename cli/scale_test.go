package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
)

// fakeScheduler stands in for the scheduler: on every formation change of
// app it reports jobs (starting, then up, or down) until the counts match.
func fakeScheduler(t *testing.T, h *harness, app *controller.App) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	events, err := h.api.StreamEvents(ctx, controller.EventFilter{AppID: app.ID, ObjectTypes: []string{controller.ObjectTypeFormation}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	go func() {
		defer close(done)
		running := map[string][]*controller.Job{}
		n := 0
		for e := range events {
			var f controller.Formation
			if err := json.Unmarshal(e.Data, &f); err != nil {
				t.Errorf("formation event: %v", err)
				continue
			}
			for typ, want := range f.Processes {
				for len(running[typ]) < want {
					n++
					j := &controller.Job{ID: fmt.Sprintf("host1-00000000-0000-0000-0000-%012d", n), AppID: app.ID, ReleaseID: f.ReleaseID, Type: typ, State: controller.JobStateStarting}
					if err := h.api.PutJob(ctx, j); err != nil {
						return
					}
					j.State = controller.JobStateUp
					if err := h.api.PutJob(ctx, j); err != nil {
						return
					}
					running[typ] = append(running[typ], j)
				}
				for len(running[typ]) > want {
					j := running[typ][len(running[typ])-1]
					running[typ] = running[typ][:len(running[typ])-1]
					j.State = controller.JobStateDown
					if err := h.api.PutJob(ctx, j); err != nil {
						return
					}
				}
			}
		}
	}()
}

func TestScale(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	h.fails("no release yet", "-a", "example", "scale")
	rel := h.deploy(app, nil)

	if out := h.ok("-a", "example", "scale"); out != "web=0 worker=0\n" {
		t.Fatalf("scale without arguments printed %q", out)
	}
	if out := h.ok("-a", "example", "scale", "--no-wait", "worker=2"); out != "Scaled example to web=0 worker=2.\n" {
		t.Fatalf("scale --no-wait printed %q", out)
	}
	var counts map[string]int
	if err := json.Unmarshal([]byte(h.ok("scale", "-a", "example", "--json")), &counts); err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"web": 0, "worker": 2}; !reflect.DeepEqual(counts, want) {
		t.Fatalf("scale --json = %v, want %v", counts, want)
	}

	fakeScheduler(t, h, app)
	out := h.ok("-a", "example", "scale", "web=3", "worker=1")
	if !strings.HasPrefix(out, "Scaling example to web=3 worker=1…\n") || !strings.Contains(out, "Scaled example to web=3 worker=1 in ") {
		t.Fatalf("scale printed:\n%s", out)
	}
	if !strings.Contains(out, "  web 0/3, worker 0/1 up\n") {
		t.Fatalf("scale printed no progress:\n%s", out)
	}
	f, err := h.api.Formation(context.Background(), app.ID, rel.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"web": 3, "worker": 1}; !reflect.DeepEqual(f.Processes, want) {
		t.Fatalf("formation = %v, want %v", f.Processes, want)
	}
	jobs, err := h.api.Jobs(context.Background(), app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := upCounts(jobsByID(jobs), rel.ID, f.Processes); !reflect.DeepEqual(got, f.Processes) {
		t.Fatalf("jobs up after scale = %v, want %v", got, f.Processes)
	}
	// Scaling down waits for jobs to stop too.
	h.ok("-a", "example", "scale", "web=1")

	h.fails(`no process type "db"`, "-a", "example", "scale", "db=1")
	h.fails(`"web=x" is not TYPE=N`, "-a", "example", "scale", "web=x")
}

func TestScaleTimeout(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	h.deploy(app, nil)
	// No scheduler: the jobs never come up.
	h.fails("timed out after 300ms waiting for web=2 worker=0 (up: web=0 worker=0)", "-a", "example", "scale", "--timeout", "300ms", "web=2")
}

func jobsByID(jobs []*controller.Job) map[string]*controller.Job {
	m := map[string]*controller.Job{}
	for _, j := range jobs {
		m[j.ID] = j
	}
	return m
}
