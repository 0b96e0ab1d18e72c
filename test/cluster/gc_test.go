package cluster

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
	hostclient "github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/host/gc"
	"github.com/openflynn/flynn/images"
)

// TestGarbageCollection runs flynn-host's garbage collector on the
// cluster: an app image archive loaded a week ago that nothing uses goes,
// while every image of the manifest and every running job stays, and the
// cluster still works afterwards.
func TestGarbageCollection(t *testing.T) {
	repo := clusterRepo(t)
	if _, err := os.Stat("/var/lib/flynn/cluster-add"); err != nil {
		downAtEnd(t, repo)
	}
	script(t, repo, 25*time.Minute, "script/cluster", "up")
	ctx := t.Context()
	hosts := hostclient.New("http://127.0.0.1:1113", clusterKey(t))

	// A stale archive: what the daemon loads for an app's image, made
	// (by its config) a week ago.
	stale := fmt.Sprintf("%sgctest-%d:latest", gc.DefaultArchivePrefix, time.Now().UnixNano())
	loadOldImage(t, stale, time.Now().Add(-7*24*time.Hour))
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", stale).Run() })

	manifest, err := images.ReadManifest(filepath.Join(repo, "bin", "images.json"))
	if err != nil {
		t.Fatal(err)
	}
	before, err := hosts.ListJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	running := map[string]bool{}
	for _, j := range before {
		if !j.State.Terminal() {
			running[j.ContainerID] = true
		}
	}

	dry, err := hosts.CollectGarbage(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || !removes(dry, stale) {
		t.Fatalf("the dry run does not name %s for removal: %+v", stale, dry.Images)
	}
	if out, err := exec.Command("docker", "image", "inspect", stale).CombinedOutput(); err != nil {
		t.Fatalf("the dry run removed %s: %v\n%s", stale, err, out)
	}

	rep, err := hosts.CollectGarbage(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("BENCH gc on the cluster: %d images managed, %d removed (%d MiB at most); %d exited containers, %d removed\n",
		len(rep.Images), count(rep.Images, func(i host.GCImage) bool { return i.Remove }), rep.ImageBytes>>20,
		len(rep.Containers), count(rep.Containers, func(c host.GCContainer) bool { return c.Remove }))
	if !removes(rep, stale) {
		t.Fatalf("gc did not remove %s: %+v", stale, rep.Images)
	}
	if err := exec.Command("docker", "image", "inspect", stale).Run(); err == nil {
		t.Errorf("%s is still there after gc", stale)
	}
	for _, img := range rep.Images {
		for key, built := range manifest {
			if img.Remove && slices.Contains(img.Refs, built.Ref) {
				t.Errorf("gc removed %s, the manifest's %s image", built.Ref, key)
			}
		}
	}
	for _, c := range rep.Containers {
		if c.Remove && running[c.ID] {
			t.Errorf("gc removed the container of running job %s", c.JobID)
		}
	}

	// The cluster still works: every component answers and every job
	// that ran before runs on.
	ca := readClusterAdd(t, repo)
	checkComponents(t, line{pin: ca.pin, key: ca.key, clusterKey: clusterKey(t)})
	after, err := hosts.ListJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range after {
		if running[j.ContainerID] && j.State.Terminal() {
			t.Errorf("job %s (%s) ended during gc: %s", j.Job.ID, j.Job.Metadata["flynn.app-name"], j.State)
		}
	}
}

func removes(rep *host.GCReport, ref string) bool {
	return slices.ContainsFunc(rep.Images, func(i host.GCImage) bool {
		return i.Remove && i.Error == "" && slices.Contains(i.Refs, ref)
	})
}

func count[T any](items []T, f func(T) bool) int {
	n := 0
	for _, i := range items {
		if f(i) {
			n++
		}
	}
	return n
}

// loadOldImage loads into Docker an image of one small layer named ref
// whose config says it was made at created: docker load keeps that date,
// as it does for an archive an app pushed.
func loadOldImage(t *testing.T, ref string, created time.Time) {
	t.Helper()
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	body := []byte("stale\n")
	if err := lw.WriteHeader(&tar.Header{Name: "stale.txt", Mode: 0o644, Size: int64(len(body)), ModTime: created}); err != nil {
		t.Fatal(err)
	}
	if _, err := lw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	diffID := sha256.Sum256(layer.Bytes())
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "created": created.UTC().Format(time.RFC3339),
		"config": map[string]any{"Cmd": []string{"/bin/true"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diffID[:])}},
	})
	if err != nil {
		t.Fatal(err)
	}
	configSum := sha256.Sum256(config)
	configName := hex.EncodeToString(configSum[:]) + ".json"
	manifest, err := json.Marshal([]map[string]any{{"Config": configName, "RepoTags": []string{ref}, "Layers": []string{"layer.tar"}}})
	if err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	aw := tar.NewWriter(&archive)
	for _, f := range []struct {
		name string
		data []byte
	}{{"layer.tar", layer.Bytes()}, {configName, config}, {"manifest.json", manifest}} {
		if err := aw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: created}); err != nil {
			t.Fatal(err)
		}
		if _, err := aw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker", "load")
	cmd.Stdin = &archive
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker load: %v\n%s", err, out)
	}
}
