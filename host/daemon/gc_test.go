package daemon

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/gc"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// gcBackend is the fake backend with an engine's inventory for the
// garbage collector: the containers and images it is given.
type gcBackend struct {
	*fakeBackend
	ctrs    []gc.Container
	imgs    []gc.Image
	removed []string
}

func (b *gcBackend) Containers(context.Context) ([]gc.Container, error) { return b.ctrs, nil }
func (b *gcBackend) Images(context.Context) ([]gc.Image, error)         { return b.imgs, nil }
func (b *gcBackend) RemoveContainer(_ context.Context, id string) error {
	b.removed = append(b.removed, id)
	return nil
}
func (b *gcBackend) RemoveImage(_ context.Context, ref string) error {
	b.removed = append(b.removed, ref)
	return nil
}

func TestDaemonOwns(t *testing.T) {
	d := newLoadingDaemon(t, &loadingBackend{fakeBackend: newFakeBackend(&trail{})}, func(c *Config) { c.Labels = map[string]string{"test": "x"} })
	jobJSON, _ := json.Marshal(&host.Job{ID: "h1-a", Metadata: map[string]string{host.MetaAppName: "web"}})
	tests := []struct {
		name   string
		labels map[string]string
		ok     bool
		app    string
	}{
		{"the host's job", map[string]string{LabelHostID: "h1", LabelJobID: "h1-a", LabelJob: string(jobJSON), "test": "x"}, true, "web"},
		{"without a readable job", map[string]string{LabelHostID: "h1", LabelJobID: "h1-a", LabelJob: "{", "test": "x"}, true, ""},
		{"another host's", map[string]string{LabelHostID: "h2", LabelJobID: "h1-a", "test": "x"}, false, ""},
		{"no job id", map[string]string{LabelHostID: "h1", "test": "x"}, false, ""},
		{"without the daemon's labels", map[string]string{LabelHostID: "h1", LabelJobID: "h1-a"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, app, ok := d.owns(tt.labels)
			if ok != tt.ok || app != tt.app || ok && id != "h1-a" {
				t.Errorf("owns = %q, %q, %v; want h1-a, %q, %v", id, app, ok, tt.app, tt.ok)
			}
		})
	}
}

// TestHoldImage: the image of a job being created, an archive's by the
// name the daemon loads it under, is wanted until the job's container
// exists.
func TestHoldImage(t *testing.T) {
	d := newLoadingDaemon(t, &loadingBackend{fakeBackend: newFakeBackend(&trail{})}, nil)
	wanted := func() (out []string) {
		_ = d.HoldImages(func(w []string) error { out = slices.Clone(w); return nil })
		slices.Sort(out)
		return out
	}
	j1, j2 := testJob("h1-x", "sleep"), testJob("h1-y", "sleep")
	j2.Artifact = "https://blobstore.example/apps/x/images/y.tar?sig=s"
	release1, release2 := d.holdImage(j1), d.holdImage(j2)
	release3 := d.holdImage(j1)
	got := wanted()
	if len(got) != 2 || !slices.Contains(got, j1.Artifact) || !slices.Contains(got, archivePrefix+strings.TrimPrefix(got[0], archivePrefix)) {
		t.Fatalf("wanted %v; want %s and an archive's name", got, j1.Artifact)
	}
	release1()
	release2()
	if got := wanted(); !slices.Equal(got, []string{j1.Artifact}) {
		t.Errorf("wanted %v after two releases; want %s, which another job still holds", got, j1.Artifact)
	}
	release3()
	if got := wanted(); len(got) != 0 {
		t.Errorf("wanted %v after every release; want none", got)
	}
}

// TestCollectGarbage: without an engine there is no collector (not
// found); with one, a job that runs keeps its exited-looking container
// beyond the bound, and a dry run removes nothing.
func TestCollectGarbage(t *testing.T) {
	ctx := context.Background()
	plain := newLoadingDaemon(t, &loadingBackend{fakeBackend: newFakeBackend(&trail{})}, nil)
	if _, err := plain.CollectGarbage(ctx, true); !httpjson.IsNotFound(err) {
		t.Errorf("CollectGarbage without an engine: %v; want not_found", err)
	}

	b := &gcBackend{fakeBackend: newFakeBackend(&trail{})}
	cfg := Config{HostID: "h1", StateDir: t.TempDir(), PortMin: 40100, PortMax: 40109, CheckInterval: 5 * time.Millisecond,
		IPTables: fakeIPTables{trail: &trail{}}, PortHeld: func(int) bool { return false },
		GC: gc.Config{KeepExited: 1}}
	d, err := New(cfg, b, nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if _, err := d.AddJob(ctx, testJob("h1-run", "sleep")); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-3 * time.Hour)
	exited := func(id, job string, ago time.Duration) gc.Container {
		return gc.Container{ID: id, State: "exited", FinishedAt: old.Add(-ago), Labels: map[string]string{LabelHostID: "h1", LabelJobID: job}}
	}
	b.ctrs = []gc.Container{exited("c1", "h1-gone1", 0), exited("c2", "h1-run", time.Hour), exited("c3", "h1-gone2", 2*time.Hour)}
	for _, dryRun := range []bool{true, false} {
		rep, err := d.CollectGarbage(ctx, dryRun)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range rep.Containers {
			got = append(got, c.ID+" "+map[bool]string{true: "remove", false: "keep"}[c.Remove])
		}
		if want := []string{"c1 keep", "c2 keep", "c3 remove"}; !slices.Equal(got, want) {
			t.Errorf("dry run %v: %v; want %v", dryRun, got, want)
		}
		if want := map[bool][]string{true: nil, false: {"c3"}}[dryRun]; !slices.Equal(b.removed, want) {
			t.Errorf("dry run %v: removed %v; want %v", dryRun, b.removed, want)
		}
	}
}
