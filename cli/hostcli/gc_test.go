package hostcli

import (
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
)

// fixtureGC is a garbage collection's report with one of each: a
// container removed and one kept, an archive and an old platform image
// removed, one removal that failed, and images kept for a container and
// for the manifest.
func fixtureGC() *host.GCReport {
	return &host.GCReport{
		Containers: []host.GCContainer{
			{ID: "aaaaaaaaaaaa1111", JobID: "host1-new", App: "web", ExitedAt: testNow.Add(-2 * time.Hour), Reason: "among the 100 most recently exited"},
			{ID: "bbbbbbbbbbbb2222", JobID: "host1-old", ExitedAt: testNow.Add(-50 * time.Hour), Remove: true, Reason: "older than the 100 most recently exited"},
		},
		Images: []host.GCImage{
			{ID: "sha256:1111111111112222", Refs: []string{"flynn/router:0123456789ab"}, Size: 25 << 20, CreatedAt: testNow.Add(-72 * time.Hour),
				Remove: true, Reason: "an older platform build no container uses, made more than 24h ago"},
			{ID: "sha256:3333333333334444", Refs: []string{"flynn-archive/5f1e:latest"}, Size: 300 << 20, CreatedAt: testNow.Add(-30 * time.Hour),
				Remove: true, Reason: "a loaded image archive no container uses; loaded again from its URL when a job needs it"},
			{ID: "sha256:5555555555556666", Refs: []string{"flynn-archive/77ab:latest"}, Size: 10 << 20, CreatedAt: testNow.Add(-30 * time.Hour),
				Remove: true, Reason: "a loaded image archive no container uses", Error: "conflict: image is being used by stopped container 9f"},
			{ID: "sha256:7777777777778888", Refs: []string{"flynn/router:fedcba987654"}, Size: 25 << 20, CreatedAt: testNow.Add(-2 * time.Hour),
				Reason: "in the images manifest (router)"},
			{ID: "sha256:9999999999990000", Refs: []string{"flynn-archive/aa01:latest"}, Size: 120 << 20, CreatedAt: testNow.Add(-5 * 24 * time.Hour),
				Reason: "used by running container flynn-host1-web"},
		},
		ImageBytes: 325 << 20,
	}
}

func TestGC(t *testing.T) {
	h := newFakeHost(t)
	tests := []struct {
		name string
		args []string
	}{
		{"gc-dry-run", []string{"gc", "--dry-run"}},
		{"gc", []string{"gc"}},
		{"gc-all", []string{"gc", "-n", "-a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.run(t, Env{}, tt.args...)
			if res.code != 0 || res.stderr != "" {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			golden(t, tt.name, res.stdout)
		})
	}
}

// With nothing to remove, gc says so in one line, not with empty tables.
func TestGCNothingToRemove(t *testing.T) {
	rep := fixtureGC()
	for i := range rep.Containers {
		rep.Containers[i].Remove = false
	}
	for i := range rep.Images {
		rep.Images[i].Remove, rep.Images[i].Error = false, ""
	}
	rep.ImageBytes, rep.DryRun = 0, true
	var out strings.Builder
	if err := writeGC(&out, rep, false, testNow); err != nil {
		t.Fatal(err)
	}
	if want := "nothing to remove: 2 exited containers and 5 images kept (--all lists them, with why)\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}
