package gc

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/images"
	"github.com/openflynn/flynn/pkg/poll"
)

// fixtureEngine holds one of each: a container beyond the bound and one
// within it, an unused archive, a used one, and an old platform image
// built on an old base.
func fixtureEngine() *fakeEngine {
	const old = 48 * time.Hour
	return &fakeEngine{
		containers: []Container{
			jobContainer("new", 2*time.Hour, "a-used"),
			jobContainer("old", 3*time.Hour, "a-used"),
		},
		images: []Image{
			archiveImage("a-unused", old, "L1"),
			archiveImage("a-used", old, "L2"),
			platformImage("base-old", "flynn/stack", "b0", old, "L3"),
			platformImage("router-old", "flynn/router", "r0", old, "L3", "L4"),
		},
	}
}

func newCollector(t *testing.T, e Engine, j Jobs, edit func(*Config)) *Collector {
	t.Helper()
	cfg := testConfig()
	cfg.KeepExited = 1
	cfg.ImagesManifest = writeManifest(t, images.Manifest{"router": {Ref: "flynn/router:r1", ID: "sha256:r1"}})
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg, e, j, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeManifest writes m as `make images` does and returns its path.
func writeManifest(t *testing.T, m images.Manifest) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "images.json")
	if err := m.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// removed lists what the report says was removed: container ids and image ids.
func reportRemovals(t *testing.T, c *Collector, dryRun bool) ([]string, int64) {
	t.Helper()
	rep, err := c.Collect(context.Background(), dryRun)
	if err != nil {
		t.Fatal(err)
	}
	if rep.DryRun != dryRun {
		t.Errorf("report's DryRun %v; want %v", rep.DryRun, dryRun)
	}
	var out []string
	for _, ct := range rep.Containers {
		if ct.Remove && ct.Error == "" {
			out = append(out, ct.ID)
		}
	}
	for _, img := range rep.Images {
		if img.Remove && img.Error == "" {
			out = append(out, img.ID)
		}
	}
	return out, rep.ImageBytes
}

func TestCollect(t *testing.T) {
	want := []string{"old", "router-old", "a-unused", "base-old"}
	t.Run("dry run removes nothing", func(t *testing.T) {
		e := fixtureEngine()
		got, bytes := reportRemovals(t, newCollector(t, e, &fakeJobs{}, nil), true)
		if !slices.Equal(got, want) || bytes != 2100 {
			t.Errorf("would remove %v (%d bytes); want %v (2100 bytes)", got, bytes, want)
		}
		if r := e.removals(); len(r) != 0 {
			t.Errorf("a dry run removed %v", r)
		}
	})
	t.Run("a run removes what the dry run showed, children first", func(t *testing.T) {
		e := fixtureEngine()
		got, bytes := reportRemovals(t, newCollector(t, e, &fakeJobs{}, nil), false)
		if !slices.Equal(got, want) || bytes != 2100 {
			t.Errorf("removed %v (%d bytes); want %v (2100 bytes)", got, bytes, want)
		}
		wantCalls := []string{"old", "flynn/router:r0", "flynn-archive/a-unused:latest", "flynn/stack:b0"}
		if r := e.removals(); !slices.Equal(r, wantCalls) {
			t.Errorf("engine removals %v; want %v", r, wantCalls)
		}
	})
	t.Run("a failed removal is reported and keeps the image's base", func(t *testing.T) {
		e := fixtureEngine()
		e.fail = map[string]bool{"flynn/router:r0": true, "old": true}
		c := newCollector(t, e, &fakeJobs{}, nil)
		rep, err := c.Collect(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		for _, ct := range rep.Containers {
			if ct.ID == "old" && ct.Error == "" {
				t.Errorf("container old: no error reported")
			}
		}
		for _, img := range rep.Images {
			switch img.ID {
			case "router-old":
				if !img.Remove || !strings.Contains(img.Error, "conflict") {
					t.Errorf("router-old: remove %v, error %q; want the removal's error", img.Remove, img.Error)
				}
			case "base-old":
				if img.Remove || !strings.Contains(img.Reason, "an image that stays is built on it: flynn/router:r0") {
					t.Errorf("base-old: remove %v (%q); want it kept for its child", img.Remove, img.Reason)
				}
			}
		}
		if rep.ImageBytes != 100 {
			t.Errorf("image bytes %d; want 100 (the archive alone)", rep.ImageBytes)
		}
		if r := e.removals(); !slices.Equal(r, []string{"flynn-archive/a-unused:latest"}) {
			t.Errorf("engine removals %v; want the archive alone", r)
		}
	})
	t.Run("a job created with an image after the plan keeps it", func(t *testing.T) {
		e := fixtureEngine()
		holds := 0
		jobs := &fakeJobs{onHold: func(j *fakeJobs) {
			holds++
			if holds == 2 { // the first is the plan's
				j.wanted = []string{"flynn/router:r0"}
			}
		}}
		got, _ := reportRemovals(t, newCollector(t, e, jobs, nil), false)
		if slices.Contains(got, "router-old") || slices.Contains(e.removals(), "flynn/router:r0") {
			t.Errorf("removed router-old, which a job is being created with: %v", e.removals())
		}
		if slices.Contains(got, "base-old") {
			t.Errorf("removed base-old, which router-old (kept) is built on")
		}
	})
	t.Run("without a readable manifest no platform image goes", func(t *testing.T) {
		e := fixtureEngine()
		c := newCollector(t, e, &fakeJobs{}, func(cfg *Config) { cfg.ImagesManifest = filepath.Join(t.TempDir(), "missing.json") })
		got, _ := reportRemovals(t, c, true)
		if want := []string{"old", "a-unused"}; !slices.Equal(got, want) {
			t.Errorf("would remove %v; want %v", got, want)
		}
	})
}

// TestImagesPackageAgrees: the labels and manifest format the collector
// knows are those of package images, which flynn-host does not import.
func TestImagesPackageAgrees(t *testing.T) {
	if LabelName != images.LabelName || LabelContent != images.LabelContent {
		t.Errorf("labels %s, %s; package images has %s, %s", LabelName, LabelContent, images.LabelName, images.LabelContent)
	}
	m, err := readManifest(writeManifest(t, images.Manifest{"router": {Ref: "flynn/router:abc", ID: "sha256:1"}}))
	if err != nil {
		t.Fatal(err)
	}
	if key, ok := m.names(Image{ID: "sha256:2", Tags: []string{"flynn/router:abc"}}); !ok || key != "router" {
		t.Errorf("by ref: %q, %v; want router", key, ok)
	}
	if key, ok := m.names(Image{ID: "sha256:1"}); !ok || key != "router" {
		t.Errorf("by id: %q, %v; want router", key, ok)
	}
}

// countingEngine counts the runs (Containers calls) of a collector.
type countingEngine struct {
	*fakeEngine
	mu   sync.Mutex
	runs int
}

func (e *countingEngine) Containers(ctx context.Context) ([]Container, error) {
	e.mu.Lock()
	e.runs++
	e.mu.Unlock()
	return e.fakeEngine.Containers(ctx)
}

func (e *countingEngine) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runs
}

// TestRun: Run collects after FirstRun and every Interval, and returns
// once its context ends.
func TestRun(t *testing.T) {
	e := &countingEngine{fakeEngine: fixtureEngine()}
	c := newCollector(t, e, &fakeJobs{}, func(cfg *Config) {
		cfg.FirstRun, cfg.Interval = time.Millisecond, 5*time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	poll.Until(t, 5*time.Second, "three runs", func() bool { return e.count() >= 3 })
	if !slices.Contains(e.removals(), "flynn-archive/a-unused:latest") {
		t.Errorf("Run removed %v; want the unused archive among them", e.removals())
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestNewNeedsOwned(t *testing.T) {
	if _, err := New(Config{}, &fakeEngine{}, &fakeJobs{}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("New without Owned: no error")
	}
}
