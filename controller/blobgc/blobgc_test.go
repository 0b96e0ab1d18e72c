package blobgc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/poll"
)

const (
	live    = "6c0f5d0e-1111-4a4a-8b8b-000000000001"
	other   = "6c0f5d0e-1111-4a4a-8b8b-000000000002"
	deleted = "6c0f5d0e-1111-4a4a-8b8b-0000000000de"
)

// fakeBlobs is an in-memory blobstore.
type fakeBlobs struct {
	mu       sync.Mutex
	blobs    map[string]blobstore.Info
	failures map[string]error // Delete of these paths fails
}

func newFakeBlobs(infos ...blobstore.Info) *fakeBlobs {
	f := &fakeBlobs{blobs: map[string]blobstore.Info{}, failures: map[string]error{}}
	for _, info := range infos {
		f.blobs[info.Path] = info
	}
	return f
}

func (f *fakeBlobs) List(_ context.Context, prefix string) ([]blobstore.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var list []blobstore.Info
	for _, p := range slices.Sorted(maps.Keys(f.blobs)) {
		if len(p) >= len(prefix) && p[:len(prefix)] == prefix {
			list = append(list, f.blobs[p])
		}
	}
	return list, nil
}

func (f *fakeBlobs) Delete(_ context.Context, p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failures[p]; err != nil {
		return err
	}
	if _, ok := f.blobs[p]; !ok {
		return fmt.Errorf("delete %s: %w", p, blobstore.ErrNotFound)
	}
	delete(f.blobs, p)
	return nil
}

func (f *fakeBlobs) paths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.blobs))
}

// fakeRefs is the controller's database.
type fakeRefs struct {
	refs postgres.BlobReferences
	err  error
}

func (f *fakeRefs) BlobReferences(context.Context, string) (*postgres.BlobReferences, error) {
	refs := f.refs
	return &refs, f.err
}

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// blob is a fixture: a blob at path modified age ago.
func blob(path string, age time.Duration) blobstore.Info {
	return blobstore.Info{Path: path, Size: 1, ETag: "e", ModTime: now.Add(-age)}
}

func slugURL(app, name string) string {
	return "http://blobstore.example.com/apps/" + app + "/" + name + "?expires=1&sig=abc"
}

// TestPlan is the collector's decision for each kind of blob.
func TestPlan(t *testing.T) {
	refs := &postgres.BlobReferences{
		AppIDs: []string{live, other},
		Mentions: []string{
			slugURL(live, "slug-named.tgz"),
			"curl -s http://blobstore/apps/" + live + "/slug-in-a-command.tgz | tar x",
			"http://blobstore/apps%2F" + live + "%2Fslug-escaped.tgz",
			slugURL(live, "slug-of-live-named-by-other.tgz"), // from a release of another app: still a name
			slugURL(live, "images/0f0e.tar"),                 // a docker-archive artifact's URI
		},
	}
	const old, fresh = 2 * time.Hour, 10 * time.Minute
	tests := []struct {
		name    string
		blob    blobstore.Info
		collect bool
	}{
		{"deleted app's slug", blob("apps/"+deleted+"/slug-1.tgz", fresh), true},
		{"deleted app's cache", blob("apps/"+deleted+"/cache.tgz", old), true},
		{"deleted app's other blob", blob("apps/"+deleted+"/x/y", fresh), true},
		{"named slug", blob("apps/"+live+"/slug-named.tgz", old), false},
		{"slug named in a command", blob("apps/"+live+"/slug-in-a-command.tgz", old), false},
		{"slug named escaped", blob("apps/"+live+"/slug-escaped.tgz", old), false},
		{"slug named by another app's release", blob("apps/"+live+"/slug-of-live-named-by-other.tgz", old), false},
		{"unnamed old slug", blob("apps/"+live+"/slug-unnamed.tgz", old), true},
		{"unnamed fresh slug", blob("apps/"+live+"/slug-building.tgz", fresh), false},
		{"unnamed slug just inside the grace", blob("apps/"+live+"/slug-edge.tgz", DefaultGrace), false},
		{"a named slug's name in another app's directory", blob("apps/"+other+"/slug-named.tgz", old), true},
		{"live app's cache", blob("apps/"+live+"/cache.tgz", old), false},
		{"live app's other blob", blob("apps/"+live+"/notes.txt", old), false},
		{"live app's image an artifact names", blob("apps/"+live+"/images/0f0e.tar", old), false},
		{"live app's image no release names yet", blob("apps/"+live+"/images/unreleased.tar", old), false},
		{"deleted app's image", blob("apps/"+deleted+"/images/0f0e.tar", fresh), true},
		{"slug in a subdirectory", blob("apps/"+live+"/x/slug-1.tgz", old), false},
		{"app id in capitals", blob("apps/6C0F5D0E-1111-4A4A-8B8B-000000000001/slug-named.tgz", old), false},
		{"not an app id", blob("apps/large/slug.tgz", old), false},
		{"an app id deeper down", blob("apps/x/apps/"+deleted+"/slug-1.tgz", old), false},
	}
	p := newPlan(refs, now.Add(-DefaultGrace))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason := p.collect(tt.blob)
			if got := reason != ""; got != tt.collect {
				t.Fatalf("collect %s = %q, want collected %v", tt.blob.Path, reason, tt.collect)
			}
		})
	}
}

func newCollector(blobs Blobs, refs References) *Collector {
	return New(Config{Blobs: blobs, References: refs, Now: func() time.Time { return now }}, slog.New(slog.DiscardHandler))
}

// TestCollect checks a pass end to end over fakes: a delete that fails is
// reported and the others still happen, and a blob gone already is no
// failure.
func TestCollect(t *testing.T) {
	blobs := newFakeBlobs(
		blob("apps/"+deleted+"/slug-1.tgz", time.Minute),
		blob("apps/"+deleted+"/cache.tgz", time.Minute),
		blob("apps/"+live+"/slug-named.tgz", 3*time.Hour),
		blob("apps/"+live+"/slug-old.tgz", 3*time.Hour),
		blob("apps/"+live+"/slug-stuck.tgz", 3*time.Hour),
		blob("apps/"+live+"/slug-new.tgz", time.Minute),
		blob("apps/"+live+"/cache.tgz", 3*time.Hour),
	)
	stuck := errors.New("disk on fire")
	blobs.failures["apps/"+live+"/slug-stuck.tgz"] = stuck
	refs := &fakeRefs{refs: postgres.BlobReferences{AppIDs: []string{live}, Mentions: []string{slugURL(live, "slug-named.tgz")}}}

	res, err := newCollector(blobs, refs).Collect(t.Context())
	if !errors.Is(err, stuck) {
		t.Fatalf("err = %v, want the failed delete's", err)
	}
	wantDeleted := []string{"apps/" + live + "/slug-old.tgz", "apps/" + deleted + "/cache.tgz", "apps/" + deleted + "/slug-1.tgz"} // in path order
	if !slices.Equal(res.Deleted, wantDeleted) || res.Kept != 4 {
		t.Errorf("result = %+v, want deleted %q and 4 kept", res, wantDeleted)
	}
	wantLeft := []string{"apps/" + live + "/cache.tgz", "apps/" + live + "/slug-named.tgz", "apps/" + live + "/slug-new.tgz", "apps/" + live + "/slug-stuck.tgz"}
	if got := blobs.paths(); !slices.Equal(got, wantLeft) {
		t.Errorf("left %q, want %q", got, wantLeft)
	}

	// A second pass finds nothing new, and a blob another controller
	// deleted in between is no failure.
	delete(blobs.failures, "apps/"+live+"/slug-stuck.tgz")
	res, err = newCollector(&vanishing{blobs}, refs).Collect(t.Context())
	if err != nil || !slices.Equal(res.Deleted, []string{"apps/" + live + "/slug-stuck.tgz"}) {
		t.Errorf("second pass = %+v, %v; want the stuck slug deleted", res, err)
	}
}

// vanishing deletes each blob behind the collector's back before the
// collector does, as a concurrent collector would.
type vanishing struct{ *fakeBlobs }

func (v *vanishing) Delete(ctx context.Context, p string) error {
	_ = v.fakeBlobs.Delete(ctx, p)
	return v.fakeBlobs.Delete(ctx, p)
}

// TestCollectDeletesNothingWithoutReferences checks that a pass that cannot
// read the database deletes nothing, though every blob would look like a
// deleted app's.
func TestCollectDeletesNothingWithoutReferences(t *testing.T) {
	blobs := newFakeBlobs(blob("apps/"+live+"/slug-1.tgz", 3*time.Hour))
	down := errors.New("database down")
	res, err := newCollector(blobs, &fakeRefs{err: down}).Collect(t.Context())
	if !errors.Is(err, down) || len(res.Deleted) != 0 || len(blobs.paths()) != 1 {
		t.Fatalf("pass = %+v, %v, left %q; want the database's error and nothing deleted", res, err, blobs.paths())
	}
}

// TestRun checks that Run makes passes until its context ends.
func TestRun(t *testing.T) {
	blobs := newFakeBlobs(blob("apps/"+deleted+"/slug-1.tgz", time.Minute))
	refs := &fakeRefs{refs: postgres.BlobReferences{AppIDs: []string{live}}}
	c := New(Config{Blobs: blobs, References: refs, Interval: 10 * time.Millisecond}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	poll.Until(t, 10*time.Second, "a pass to delete the deleted app's slug", func() bool { return len(blobs.paths()) == 0 })
	blobs.mu.Lock()
	blobs.blobs["apps/"+deleted+"/cache.tgz"] = blob("apps/"+deleted+"/cache.tgz", time.Minute)
	blobs.mu.Unlock()
	poll.Until(t, 10*time.Second, "a later pass to delete a blob uploaded since", func() bool { return len(blobs.paths()) == 0 })
	cancel()
	<-done
}
