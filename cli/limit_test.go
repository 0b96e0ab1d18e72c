package cli

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/hostjob"
)

func TestLimit(t *testing.T) {
	h := newHarness(t)
	app := h.app("example")
	v1 := h.deploy(app, map[string]string{"KEEP": "yes"})
	ctx := context.Background()

	if out := squash(h.ok("-a", "example", "limit")); out != "TYPE MEMORY PIDS\nweb 1GiB (default) 512 (default)\nworker 1GiB (default) 512 (default)\n" {
		t.Fatalf("limit:\n%s", out)
	}
	out := h.ok("-a", "example", "limit", "set", "web", "memory=2GiB", "pids=1024", "cpu=500m")
	// "Deploying release v2…" comes first when the deployment is not
	// finished by the time the release is made.
	if !strings.Contains(out, "Deployed release v2 of example in ") {
		t.Fatalf("limit set printed %q", out)
	}
	v2, err := h.api.AppRelease(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := controller.Resources{Memory: 2 << 30, MaxProcs: 1024, CPU: 500}
	if v2.Version != 2 || v2.Processes["web"].Resources == nil || *v2.Processes["web"].Resources != want {
		t.Fatalf("after limit set: %s web resources %+v, want %+v", controller.ReleaseVersion(v2.Version), v2.Processes["web"].Resources, want)
	}
	if v2.ArtifactID != v1.ArtifactID || !reflect.DeepEqual(v2.Env, v1.Env) || !reflect.DeepEqual(v2.Processes["worker"], v1.Processes["worker"]) || v2.Processes["web"].Service != "example-web" {
		t.Fatal("limit set changed more than web's limits")
	}
	if out := squash(h.ok("-a", "example", "limit")); out != "TYPE MEMORY PIDS CPU\nweb 2GiB 1024 0.5\nworker 1GiB (default) 512 (default) -\n" {
		t.Fatalf("limit after set:\n%s", out)
	}
	var limits map[string]limits
	if err := json.Unmarshal([]byte(h.ok("-a", "example", "limit", "--json")), &limits); err != nil {
		t.Fatal(err)
	}
	if w := limits["worker"]; w.Memory != hostjob.DefaultMemory || w.Pids != hostjob.DefaultPids || len(w.Defaults) != 2 {
		t.Fatalf("limit --json worker = %+v", w)
	}
	if out := h.ok("-a", "example", "limit", "set", "web", "memory=2GiB"); out != "Nothing changed; example stays at v2.\n" {
		t.Fatalf("limit set to the same printed %q", out)
	}
	h.ok("-a", "example", "limit", "set", "web", "memory=default", "pids=default", "cpu=default", "--no-wait")
	if v3, err := h.api.AppRelease(ctx, app.ID); err != nil || v3.Version != 3 || v3.Processes["web"].Resources != nil {
		t.Fatalf("after resetting every limit: %+v, %v; want v3 without resources", v3, err)
	}

	bad := []struct{ args, want string }{
		{"web memory=2GB", `memory: size "2GB": want bytes, or a whole number with KiB, MiB, GiB or TiB (512MiB)`},
		{"web memory=1KiB", "memory 1KiB is below 6MiB"},
		{"web pids=lots", `pids "lots": want a number of processes, 1 or more`},
		{"web pids=0", `pids "0": want a number of processes, 1 or more`},
		{"web cpu=fast", `cpu "fast": want cores (0.5) or millicores (500m)`},
		{"web memory", `"memory" is not LIMIT=VALUE`},
		{"web disk=1GiB", `unknown limit "disk"`},
		{"web", "want TYPE LIMIT=VALUE…"},
		{"nope memory=1GiB", `release v3 has no process type "nope" (it has: web, worker)`},
	}
	for _, tt := range bad {
		h.fails(tt.want, append([]string{"-a", "example", "limit", "set"}, strings.Fields(tt.args)...)...)
	}
	h.app("fresh")
	h.fails("no release yet", "-a", "fresh", "limit", "set", "web", "memory=1GiB")
}
