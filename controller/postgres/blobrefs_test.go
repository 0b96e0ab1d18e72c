package postgres

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
)

// TestBlobReferences checks that the collector sees every app and every
// string of a release that mentions the blobstore, wherever in the release
// it is, and nothing of deleted apps or of artifacts no release uses.
func TestBlobReferences(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	store, err := Open(ctx, shared.Server(t).NewDatabase(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	a, b := &controller.App{Name: "a"}, &controller.App{Name: "b"}
	for _, app := range []*controller.App{a, b} {
		if err := store.Apps.Create(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	artifact := func(uri string) string {
		art := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: uri, Meta: map[string]string{"from": uri + "/meta"}}
		if err := store.Artifacts.Create(ctx, art); err != nil {
			t.Fatal(err)
		}
		return art.ID
	}
	slugA := "http://blobstore.example.com/apps/" + a.ID + "/slug-1.tgz?expires=1&sig=x"
	releases := []*controller.Release{
		{AppID: a.ID, ArtifactID: artifact("slugrunner:1"), Env: map[string]string{"SLUG_URL": slugA, "PORT": "5000"}},
		{
			AppID: a.ID, ArtifactID: artifact("slugrunner:1"),
			Processes: map[string]controller.ProcessType{"web": {Cmd: []string{"run", "apps/" + a.ID + "/in-cmd"}, Env: map[string]string{"X": "apps/" + a.ID + "/in-process-env"}}},
			Meta:      map[string]string{"slug": "/apps/" + a.ID + "/in-meta"},
		},
		{AppID: b.ID, ArtifactID: artifact("http://x/apps/" + b.ID + "/artifact")},
	}
	for _, rel := range releases {
		if err := store.Releases.Create(ctx, rel); err != nil {
			t.Fatal(err)
		}
	}
	artifact("http://x/apps/unused/artifact") // no release uses it

	check := func(wantApps, wantMentions []string) {
		t.Helper()
		refs, err := store.BlobReferences(ctx, "apps/")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(refs.AppIDs)
		slices.Sort(refs.Mentions)
		slices.Sort(wantApps)
		slices.Sort(wantMentions)
		if !slices.Equal(refs.AppIDs, wantApps) {
			t.Errorf("apps = %q, want %q", refs.AppIDs, wantApps)
		}
		if !slices.Equal(refs.Mentions, wantMentions) {
			t.Errorf("mentions = %q, want %q", refs.Mentions, wantMentions)
		}
	}
	check([]string{a.ID, b.ID}, []string{
		slugA,
		"apps/" + a.ID + "/in-cmd",
		"apps/" + a.ID + "/in-process-env",
		"/apps/" + a.ID + "/in-meta",
		"http://x/apps/" + b.ID + "/artifact",
		"http://x/apps/" + b.ID + "/artifact/meta",
	})

	if _, err := store.Apps.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	check([]string{b.ID}, []string{"http://x/apps/" + b.ID + "/artifact", "http://x/apps/" + b.ID + "/artifact/meta"})
}
