package gc

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
)

// want is the decision on one container or image: removed or not, and a
// part of the reason.
type want struct {
	remove bool
	reason string
}

func TestDecideContainers(t *testing.T) {
	many := func(n int) []Container {
		var out []Container
		for i := range n {
			out = append(out, jobContainer(fmt.Sprintf("c%02d", i), time.Duration(i+2)*time.Hour, "sha256:img"))
		}
		return out
	}
	tests := []struct {
		name       string
		keep       int
		containers []Container
		unfinished []string
		want       map[string]want // by container id; those absent are not listed
	}{
		{
			name:       "the newest are kept, the rest removed",
			keep:       2,
			containers: many(4),
			want: map[string]want{
				"c00": {false, "among the 2 most recently exited"},
				"c01": {false, "among the 2 most recently exited"},
				"c02": {true, "older than the 2 most recently exited"},
				"c03": {true, "older than the 2 most recently exited"},
			},
		},
		{
			name: "running, created and foreign containers are never candidates",
			keep: 1,
			containers: append(many(1),
				running("run", "sha256:img"),
				func() Container { c := jobContainer("new", 5*time.Hour, "sha256:img"); c.State = "created"; return c }(),
				func() Container {
					c := jobContainer("other", 5*time.Hour, "sha256:img")
					c.Labels["host"] = "host2"
					return c
				}(),
				func() Container {
					c := jobContainer("nojob", 5*time.Hour, "sha256:img")
					delete(c.Labels, "job")
					return c
				}(),
			),
			want: map[string]want{"c00": {false, "most recently"}},
		},
		{
			name:       "a job the daemon still tracks keeps its container",
			keep:       1,
			containers: many(3),
			unfinished: []string{"job-c02"},
			want: map[string]want{
				"c00": {false, "most recently"},
				"c01": {true, "older than"},
				"c02": {false, "its job has not ended"},
			},
		},
		{
			name: "one that exited within MinAge stays beyond the bound",
			keep: 1,
			containers: []Container{
				jobContainer("a", time.Minute, "sha256:img"),
				jobContainer("b", 30*time.Minute, "sha256:img"),
				jobContainer("c", 3*time.Hour, "sha256:img"),
			},
			want: map[string]want{
				"a": {false, "most recently"},
				"b": {false, "exited less than 1h ago"},
				"c": {true, "older than"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.KeepExited = tt.keep
			if err := cfg.setDefaults(); err != nil {
				t.Fatal(err)
			}
			s := snapshot{containers: tt.containers, now: now, unfinished: map[string]bool{}}
			for _, id := range tt.unfinished {
				s.unfinished[id] = true
			}
			got := decideContainers(s, &cfg)
			seen := map[string]bool{}
			for _, c := range got {
				seen[c.ID] = true
				w, ok := tt.want[c.ID]
				if !ok {
					t.Errorf("container %s listed (%v, %q); want it left out", c.ID, c.Remove, c.Reason)
					continue
				}
				if c.Remove != w.remove || !strings.Contains(c.Reason, w.reason) {
					t.Errorf("container %s: remove %v (%q); want %v (%q)", c.ID, c.Remove, c.Reason, w.remove, w.reason)
				}
				if c.JobID != "job-"+c.ID || c.App != "web" {
					t.Errorf("container %s: job %q app %q; want job-%s, web", c.ID, c.JobID, c.App, c.ID)
				}
			}
			for id := range tt.want {
				if !seen[id] {
					t.Errorf("container %s not listed", id)
				}
			}
		})
	}
}

func TestDecideImages(t *testing.T) {
	const old = 48 * time.Hour
	current := &manifest{
		refs: map[string]string{"flynn/router:new": "router", "flynn/stack:cur": "stack"},
		ids:  map[string]string{"ctl": "controller"},
	}
	withTags := func(img Image, tags ...string) Image { img.Tags = tags; return img }
	withLabel := func(img Image, k, v string) Image {
		img.Labels = map[string]string{k: v}
		return img
	}
	tests := []struct {
		name       string
		images     []Image
		containers []Container
		manifest   *manifest
		wanted     []string
		scope      string
		want       map[string]want // by image id; those absent are not listed
		order      []string        // the removals' order, when it matters
	}{
		{
			name:   "an unused archive is removed; one a container uses stays, exited or running",
			images: []Image{archiveImage("a1", old), archiveImage("a2", old), archiveImage("a3", old)},
			containers: []Container{
				jobContainer("x", 3*time.Hour, "a2"),
				running("y", "a3"),
			},
			want: map[string]want{
				"a1": {true, "loaded again from its URL"},
				"a2": {false, "used by exited container flynn-x"},
				"a3": {false, "used by running container flynn-y"},
			},
		},
		{
			name:       "a container of another host or none of flynn's still keeps its image",
			images:     []Image{archiveImage("a1", old)},
			containers: []Container{{ID: "z", Name: "someone-elses", ImageID: "a1", State: "exited"}},
			want:       map[string]want{"a1": {false, "used by exited container someone-elses"}},
		},
		{
			name:   "nothing younger than MinAge goes",
			images: []Image{archiveImage("a1", 59*time.Minute), withLabel(withTags(archiveImage("b1", 10*time.Minute), "flynn-build/app:x"), host.BuildLabelApp, "app")},
			want: map[string]want{
				"a1": {false, "made less than 1h ago"},
				"b1": {false, "made less than 1h ago"},
			},
		},
		{
			name:   "an image a job is being created with stays",
			images: []Image{archiveImage("a1", old), archiveImage("a2", old)},
			wanted: []string{"flynn-archive/a1:latest", "flynn-archive/a2"},
			want: map[string]want{
				"a1": {false, "a job is being created with it"},
				"a2": {false, "a job is being created with it"},
			},
		},
		{
			name: "an unsaved build goes; a flynn-build name without the build label is not the host's",
			images: []Image{
				withLabel(withTags(archiveImage("b1", old), "flynn-build/app:x"), host.BuildLabelApp, "app"),
				withTags(archiveImage("b2", old), "flynn-build/app:y"),
			},
			want: map[string]want{"b1": {true, "never took"}},
		},
		{
			name: "platform images: the manifest's, the latest and the young stay; old ones go after the grace",
			images: []Image{
				platformImage("r-new", "flynn/router", "new", old),
				platformImage("ctl", "flynn/controller", "c1", old),
				withTags(platformImage("r-latest", "flynn/router", "mid", old), "flynn/router:mid", "flynn/router:latest"),
				platformImage("r-recent", "flynn/router", "recent", 3*time.Hour),
				platformImage("r-old", "flynn/router", "old", old),
			},
			manifest: current,
			want: map[string]want{
				"r-new":    {false, "in the images manifest (router)"},
				"ctl":      {false, "in the images manifest (controller)"},
				"r-latest": {false, "the latest build of flynn/router"},
				"r-recent": {false, "made less than 24h ago"},
				"r-old":    {true, "older platform build"},
			},
		},
		{
			name:   "without a manifest no platform image goes",
			images: []Image{platformImage("r-old", "flynn/router", "old", old)},
			want:   map[string]want{"r-old": {false, "no images manifest is known"}},
		},
		{
			name: "an image that merely inherits the platform labels is not managed",
			images: []Image{
				withTags(platformImage("mine", "flynn/stack", "cur", old), "myapp:v1"),
			},
			manifest: current,
			want:     map[string]want{},
		},
		{
			name: "an image with a name the collector does not manage stays",
			images: []Image{
				withTags(archiveImage("a1", old), "flynn-archive/a1:latest", "mine:v1"),
				withTags(archiveImage("u", old)),
			},
			want: map[string]want{"a1": {false, "also named mine:v1"}},
		},
		{
			name: "the bases of a kept image stay; an unused base goes after its child",
			images: []Image{
				platformImage("stack-cur", "flynn/stack", "cur", old, "L1", "L2"),
				withTags(platformImage("root-cur", "flynn/stack", "root-cur", old, "L1"), "flynn/stack:root-cur"),
				platformImage("stack-old", "flynn/stack", "old", old, "L9"),
				platformImage("router-old", "flynn/router", "old", old, "L9", "L8"),
				func() Image {
					img := platformImage("child-of-parent", "flynn/slugbuilder", "old", old)
					img.ParentID = "mid"
					return img
				}(),
				{ID: "mid", ParentID: "build-old"},
				platformImage("build-old", "flynn/build", "old", old),
			},
			containers: []Container{running("slug", "child-of-parent")},
			manifest:   current,
			want: map[string]want{
				"stack-cur":       {false, "in the images manifest (stack)"},
				"root-cur":        {false, "an image that stays is built on it: flynn/stack:cur"},
				"stack-old":       {true, "older platform build"},
				"router-old":      {true, "older platform build"},
				"child-of-parent": {false, "used by running container"},
				"build-old":       {false, "an image that stays is built on it: flynn/slugbuilder:old"},
			},
			order: []string{"router-old", "stack-old"},
		},
		{
			name: "out of ImageScope nothing is listed",
			images: []Image{
				archiveImage("a1", old),
				withTags(archiveImage("t1", old), "flynn-gctest/flynn-archive/t1:latest"),
			},
			scope: "flynn-gctest/",
			want:  map[string]want{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.ImageScope = tt.scope
			if err := cfg.setDefaults(); err != nil {
				t.Fatal(err)
			}
			s := snapshot{images: tt.images, containers: tt.containers, manifest: tt.manifest, wanted: tt.wanted, now: now}
			got := decideImages(s, &cfg)
			seen := map[string]bool{}
			var order []string
			for _, img := range got {
				seen[img.ID] = true
				if img.Remove {
					order = append(order, img.ID)
				}
				w, ok := tt.want[img.ID]
				if !ok {
					t.Errorf("image %s listed (%v, %q); want it left out", img.ID, img.Remove, img.Reason)
					continue
				}
				if img.Remove != w.remove || !strings.Contains(img.Reason, w.reason) {
					t.Errorf("image %s: remove %v (%q); want %v (%q)", img.ID, img.Remove, img.Reason, w.remove, w.reason)
				}
			}
			for id := range tt.want {
				if !seen[id] {
					t.Errorf("image %s not listed", id)
				}
			}
			if tt.order != nil && strings.Join(order, " ") != strings.Join(tt.order, " ") {
				t.Errorf("removal order %v; want %v", order, tt.order)
			}
		})
	}
}

// TestDecideIsStable: the same snapshot gives the same plan, whatever
// order the engine listed things in.
func TestDecideIsStable(t *testing.T) {
	cfg := testConfig()
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	imgs := []Image{archiveImage("a1", 48*time.Hour, "L1"), archiveImage("a2", 48*time.Hour, "L1", "L2"), archiveImage("a3", 48*time.Hour, "L3")}
	ctrs := []Container{jobContainer("x", 2*time.Hour, "a3"), jobContainer("y", 2*time.Hour, "a3")}
	first := fmt.Sprint(decide(snapshot{images: imgs, containers: ctrs, now: now}, &cfg))
	for range 20 {
		imgs[0], imgs[2] = imgs[2], imgs[0]
		ctrs[0], ctrs[1] = ctrs[1], ctrs[0]
		if got := fmt.Sprint(decide(snapshot{images: imgs, containers: ctrs, now: now}, &cfg)); got != first {
			t.Fatalf("plan changed with the order of the snapshot:\n%s\n%s", got, first)
		}
	}
}
