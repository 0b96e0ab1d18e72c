package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/host/gc"
	"github.com/openflynn/flynn/host/hosttest"
	"github.com/openflynn/flynn/pkg/random"
)

// TestGarbageCollection runs the collector on a real engine, confined to
// throwaway images (ImageScope, a repository of the test's own) and
// containers (a host id of its own), so that it cannot touch a cluster's
// on the same engine: a dry run removes nothing; a run removes the oldest
// exited container beyond the bound, an unused archive and an old
// platform image, and keeps the images containers use, the manifest's,
// and the base of an image that stays.
func TestGarbageCollection(t *testing.T) {
	dc := hosttest.Docker(t)
	testjob := hosttest.Build(t, dc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b, err := New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	scope := "flynn-gctest-" + random.Hex(4) + "/"
	hostID := "gctest-" + random.Hex(4)
	var made []string // refs, in the order they were made
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		// dc, not b, which is closed by now.
		ctrs, _ := dc.ContainerList(cctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", daemon.LabelHostID+"="+hostID))})
		for _, c := range ctrs {
			if err := dc.ContainerRemove(cctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				t.Errorf("remove test container %s: %v", c.ID, err)
			}
		}
		for i := len(made) - 1; i >= 0; i-- {
			if _, err := dc.ImageRemove(cctx, made[i], image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
				t.Errorf("remove test image %s: %v", made[i], err)
			}
		}
	})
	buildImage := func(ref, from string, labels map[string]string) string {
		t.Helper()
		id := buildTiny(ctx, t, dc, ref, from, labels)
		made = append(made, ref)
		return id
	}
	platform := func(repo, content, from string) string {
		return buildImage(scope+repo+":"+content, from, map[string]string{gc.LabelName: scope + repo, gc.LabelContent: content})
	}
	archiveStale := buildImage(scope+"flynn-archive/stale:latest", testjob, nil)
	archiveUsed := buildImage(scope+"flynn-archive/used:latest", testjob, nil)
	routerOld := platform("router", "old1", testjob)
	routerCur := platform("router", "cur1", testjob)
	stackOld := platform("stack", "old0", testjob)
	routerUsed := platform("router", "used1", scope+"stack:old0")

	// Three exited job containers, oldest first.
	var ctrs []string
	for i, img := range []string{testjob, scope + "flynn-archive/used:latest", scope + "router:used1"} {
		jobID := hostID + "-job" + string(rune('a'+i))
		id, err := b.Create(ctx, &daemon.ContainerSpec{
			Name: "flynn-" + jobID, Image: img, Cmd: []string{"exit", "0"}, Entrypoint: []string{"/testjob"},
			Labels: map[string]string{hosttest.Label: "true", daemon.LabelHostID: hostID, daemon.LabelJobID: jobID},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctrs = append(ctrs, id)
		if err := b.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Wait(ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	manifest := filepath.Join(t.TempDir(), "images.json")
	if err := os.WriteFile(manifest, []byte(`{"router": {"ref": "`+scope+`router:cur1", "id": "`+routerCur+`"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	collector, err := gc.New(gc.Config{
		Owned: func(labels map[string]string) (string, string, bool) {
			return labels[daemon.LabelJobID], "", labels[daemon.LabelHostID] == hostID
		},
		KeepExited:     2,
		MinAge:         time.Nanosecond, // everything here was made a moment ago
		PlatformGrace:  time.Nanosecond,
		ImagesManifest: manifest,
		ArchivePrefix:  scope + "flynn-archive/",
		ImageScope:     scope,
	}, b, noJobs{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}

	wantContainers := map[string]bool{ctrs[0]: true, ctrs[1]: false, ctrs[2]: false}
	wantImages := map[string]bool{
		archiveStale: true, routerOld: true,
		archiveUsed: false, routerCur: false, routerUsed: false, stackOld: false,
	}
	for _, dryRun := range []bool{true, false} {
		rep, err := collector.Collect(ctx, dryRun)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.MarshalIndent(rep, "", "  ")
		t.Logf("dry run %v: %s", dryRun, data)
		if len(rep.Containers) != len(wantContainers) || len(rep.Images) != len(wantImages) {
			t.Fatalf("dry run %v: %d containers and %d images listed; want %d and %d", dryRun, len(rep.Containers), len(rep.Images), len(wantContainers), len(wantImages))
		}
		for _, c := range rep.Containers {
			if c.Remove != wantContainers[c.ID] || c.Error != "" {
				t.Errorf("dry run %v: container %s: remove %v (%s) error %q; want remove %v", dryRun, c.ID[:12], c.Remove, c.Reason, c.Error, wantContainers[c.ID])
			}
		}
		for _, img := range rep.Images {
			if img.Remove != wantImages[img.ID] || img.Error != "" {
				t.Errorf("dry run %v: image %v: remove %v (%s) error %q; want remove %v", dryRun, img.Refs, img.Remove, img.Reason, img.Error, wantImages[img.ID])
			}
		}
		for id, remove := range wantImages {
			_, err := dc.ImageInspect(ctx, id)
			switch gone := cerrdefs.IsNotFound(err); {
			case err != nil && !gone:
				t.Fatal(err)
			case gone != (remove && !dryRun):
				t.Errorf("dry run %v: image %s gone: %v", dryRun, id, gone)
			}
		}
		for id, remove := range wantContainers {
			_, err := dc.ContainerInspect(ctx, id)
			if gone := cerrdefs.IsNotFound(err); gone != (remove && !dryRun) {
				t.Errorf("dry run %v: container %s gone: %v (%v)", dryRun, id[:12], gone, err)
			}
		}
	}
}

// noJobs is a job runner with no jobs.
type noJobs struct{}

func (noJobs) Unfinished() []string                            { return nil }
func (noJobs) HoldImages(fn func(wanted []string) error) error { return fn(nil) }

// buildTiny builds an image FROM from with one file of its own (so that
// each has a layer of its own) and labels, tagged ref, and returns its id.
func buildTiny(ctx context.Context, t *testing.T, dc *client.Client, ref, from string, labels map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := map[string]string{"Dockerfile": "FROM " + from + "\nCOPY f /gc-" + random.Hex(4) + "\n", "f": ref + "\n"}
	for name, body := range files {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	all := map[string]string{hosttest.Label: "true"}
	for k, v := range labels {
		all[k] = v
	}
	resp, err := dc.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Version: build.BuilderV1, Tags: []string{ref}, Labels: all, Remove: true, ForceRemove: true,
	})
	if err != nil {
		t.Fatalf("build %s: %v", ref, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("build %s: %v", ref, err)
		}
		if m.Error != "" {
			t.Fatalf("build %s: %s", ref, strings.TrimSpace(m.Error))
		}
	}
	info, err := dc.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatalf("built %s: %v", ref, err)
	}
	return info.ID
}
