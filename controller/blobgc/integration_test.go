package blobgc

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/blobstore/client"
	"github.com/openflynn/flynn/blobstore/fs"
	"github.com/openflynn/flynn/blobstore/server"
	"github.com/openflynn/flynn/blobstore/signed"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
)

// TestCollectorOverTheRealStores runs passes against the controller's
// Postgres store and a blobstore served over HTTP, with apps, releases and
// blobs made as gitreceive makes them: a deleted app's blobs go at once,
// an unnamed slug goes once older than the grace period, and a slug a
// release names, the live app's build cache and a fresh unnamed slug stay.
func TestCollectorOverTheRealStores(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	store, err := postgres.Open(ctx, shared.Server(t).NewDatabase(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	const key = "blobstore-key"
	backend, err := fs.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.NewHandler(backend, server.Options{AuthKey: key}, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer hc.CloseIdleConnections()
	blobs := client.New(srv.URL, key)
	blobs.HTTP = hc

	kept, gone := &controller.App{Name: "kept"}, &controller.App{Name: "gone"}
	for _, app := range []*controller.App{kept, gone} {
		if err := store.Apps.Create(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	art := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "slugrunner:1"}
	if err := store.Artifacts.Create(ctx, art); err != nil {
		t.Fatal(err)
	}
	path := func(app *controller.App, name string) string { return "apps/" + app.ID + "/" + name }
	for _, app := range []*controller.App{kept, gone} {
		// As gitreceive signs it, through the router's name for the
		// blobstore rather than the one the collector uses.
		slugURL, err := signed.URL("http://blobstore.example.com", key, http.MethodGet, "/"+path(app, "slug-named.tgz"), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		rel := &controller.Release{AppID: app.ID, ArtifactID: art.ID, Env: map[string]string{"SLUG_URL": slugURL}}
		if err := store.Releases.Create(ctx, rel); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{
		path(kept, "slug-named.tgz"), path(kept, "slug-unnamed.tgz"), path(kept, "cache.tgz"),
		path(gone, "slug-named.tgz"), path(gone, "cache.tgz"),
		"apps/large/slug.tgz", // not an app's
	} {
		if _, err := blobs.Put(ctx, p, strings.NewReader(p)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Apps.Delete(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}

	pass := func(now time.Time, wantLeft ...string) {
		t.Helper()
		c := New(Config{Blobs: blobs, References: store, Now: func() time.Time { return now }}, slog.New(slog.DiscardHandler))
		if _, err := c.Collect(ctx); err != nil {
			t.Fatalf("pass: %v", err)
		}
		list, err := blobs.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, info := range list {
			left = append(left, info.Path)
		}
		slices.Sort(wantLeft)
		if !slices.Equal(left, wantLeft) {
			t.Fatalf("left %q, want %q", left, wantLeft)
		}
	}
	// Now: every blob is fresh, the deleted app's go all the same.
	pass(time.Now(), path(kept, "slug-named.tgz"), path(kept, "slug-unnamed.tgz"), path(kept, "cache.tgz"), "apps/large/slug.tgz")
	// Past the grace period: the unnamed slug goes too.
	pass(time.Now().Add(DefaultGrace+time.Minute), path(kept, "slug-named.tgz"), path(kept, "cache.tgz"), "apps/large/slug.tgz")

	if _, err := blobs.Stat(ctx, path(gone, "cache.tgz")); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("stat of the deleted app's cache: err = %v, want not found", err)
	}
}
