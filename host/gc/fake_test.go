package gc

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// now is the clock of every test.
var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const testHost = "host1"

// testConfig is the collector's configuration in tests: the host's job
// containers are those labelled host=host1 with a job label.
func testConfig() Config {
	return Config{
		Owned: func(labels map[string]string) (string, string, bool) {
			return labels["job"], labels["app"], labels["host"] == testHost
		},
		Now: func() time.Time { return now },
	}
}

// jobContainer is an exited job container of the host, exited ago.
func jobContainer(id string, ago time.Duration, imageID string) Container {
	return Container{
		ID: id, Name: "flynn-" + id, ImageID: imageID, Image: imageID, State: "exited",
		Labels:     map[string]string{"host": testHost, "job": "job-" + id, "app": "web"},
		FinishedAt: now.Add(-ago),
	}
}

// running is a running container of image.
func running(id, imageID string) Container {
	c := jobContainer(id, 0, imageID)
	c.State, c.FinishedAt = "running", time.Time{}
	return c
}

// archiveImage is a loaded archive made ago.
func archiveImage(id string, ago time.Duration, layers ...string) Image {
	return Image{ID: id, Tags: []string{"flynn-archive/" + id + ":latest"}, Created: now.Add(-ago), Size: 100, Layers: layers}
}

// platformImage is a content-tagged image of `make images`, made ago.
func platformImage(id, repo, content string, ago time.Duration, layers ...string) Image {
	return Image{
		ID: id, Tags: []string{repo + ":" + content}, Created: now.Add(-ago), Size: 1000, Layers: layers,
		Labels: map[string]string{LabelName: repo, LabelContent: content},
	}
}

// fakeEngine is an engine in memory that records removals; fail makes
// the removal of a name or container fail.
type fakeEngine struct {
	mu         sync.Mutex
	containers []Container
	images     []Image
	removed    []string // container ids and image names, in order
	fail       map[string]bool
}

func (f *fakeEngine) Containers(context.Context) ([]Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.containers), nil
}

func (f *fakeEngine) Images(context.Context) ([]Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.images), nil
}

func (f *fakeEngine) RemoveContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail[id] {
		return errors.New("refused")
	}
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeEngine) RemoveImage(_ context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail[ref] {
		return errors.New("conflict: image is in use")
	}
	f.removed = append(f.removed, ref)
	return nil
}

func (f *fakeEngine) removals() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.removed)
}

// fakeJobs is the job runner's side: unfinished job ids and the images of
// jobs being created.
type fakeJobs struct {
	unfinished []string
	wanted     []string
	// onHold runs inside HoldImages, before fn (a job arriving).
	onHold func(*fakeJobs)
}

func (j *fakeJobs) Unfinished() []string { return j.unfinished }

func (j *fakeJobs) HoldImages(fn func([]string) error) error {
	if j.onHold != nil {
		j.onHold(j)
	}
	return fn(j.wanted)
}
