package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	hostclient "github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/images"
	"github.com/openflynn/flynn/pkg/poll"
)

// TestUpgrade moves every component of the running cluster to new images
// with `flynn-host upgrade`, as install-flynn does after a rebuild from a
// newer checkout, while an app serves a request loop through the router:
// each component is replaced by an ordinary deployment (the controller
// deploying itself; discoverd and Postgres stop-first), at most one
// request per worker fails (none did here but once), and the cluster works
// afterwards. It then upgrades back to the images
// of bin/images.json, so the tests after it run what was built.
func TestUpgrade(t *testing.T) {
	repo := clusterRepo(t)
	if _, err := os.Stat("/var/lib/flynn/cluster-add"); err != nil {
		downAtEnd(t, repo)
	}
	script(t, repo, 25*time.Minute, "script/cluster", "up")
	ctx := t.Context()
	ca := readClusterAdd(t, repo)
	api := controllerClient(ca.key)
	hosts := hostclient.New("http://127.0.0.1:1113", clusterKey(t))

	built, err := images.ReadManifest(filepath.Join(repo, "bin", "images.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The new images: each of the manifest's with one label more, as a
	// rebuild of a changed checkout gives every component a new image.
	stamp := fmt.Sprintf("upgrade-%d", time.Now().Unix())
	changed := images.Manifest{}
	for k, b := range built {
		ref := relabel(t, b.Ref, stamp)
		changed[k] = images.Built{Ref: ref}
	}
	dir := t.TempDir()
	changedPath := filepath.Join(dir, "images.json")
	if err := changed.WriteFile(changedPath); err != nil {
		t.Fatal(err)
	}

	app := deployWeb(t, api, repo, "upgrade", 2)
	domain := "upgrade." + domain
	if err := api.CreateRoute(ctx, app.ID, &controller.Route{Type: controller.RouteTypeHTTP, Service: app.Name + "-web", Domain: domain}); err != nil {
		t.Fatal(err)
	}
	poll.UntilNil(t, time.Minute, "the app answers through the router", func() error { return get("127.0.0.1", domain) })

	const workers = 2
	upgrade := func(manifest images.Manifest, path, what string) {
		t.Helper()
		requests := startRequests("127.0.0.1", domain, workers)
		start := time.Now()
		out := upgradeCommand(t, repo, path)
		took := time.Since(start)
		reqs, failed := requests.stop()
		moved := strings.Count(out, " deployed in ")
		fmt.Printf("BENCH upgrade %s: %d components deployed in %s; %d of %d requests failed\n", what, moved, took.Round(100*time.Millisecond), failed, reqs)
		for _, f := range requests.failures() {
			t.Logf("failed request: %s", f)
		}
		// A request the kernel had queued on the old router's listener
		// when it closed is reset where tcp_migrate_req is missing (or
		// when it races the hand-over): one per worker at most.
		if failed > workers {
			t.Errorf("upgrade %s: %d of %d requests failed", what, failed, reqs)
		}
		if moved == 0 {
			t.Errorf("upgrade %s deployed nothing:\n%s", what, out)
		}
		// Every component's jobs run the new images, and only those.
		poll.UntilNil(t, 2*time.Minute, "every component on its new image", func() error {
			return onImages(ctx, hosts, manifest)
		})
		// A second run finds nothing to do.
		if again := upgradeCommand(t, repo, path); strings.Contains(again, " deployed in ") {
			t.Errorf("upgrade %s run again deployed:\n%s", what, again)
		}
	}
	upgrade(changed, changedPath, "to relabelled images")
	checkComponents(t, line{pin: ca.pin, key: ca.key, clusterKey: clusterKey(t)})
	upgrade(built, filepath.Join(repo, "bin", "images.json"), "back to bin/images.json")
	checkComponents(t, line{pin: ca.pin, key: ca.key, clusterKey: clusterKey(t)})
	if err := get("127.0.0.1", domain); err != nil {
		t.Errorf("the app after the upgrades: %v", err)
	}
}

// relabel makes an image that is ref with one label more, tagged
// <ref's repository>:<stamp>, and returns its ref; the test removes it at
// the end.
func relabel(t *testing.T, ref, stamp string) string {
	t.Helper()
	repoName, _, _ := strings.Cut(ref, ":")
	newRef := repoName + ":" + stamp
	out, err := exec.Command("docker", "create", ref).Output()
	if err != nil {
		t.Fatalf("docker create %s: %v", ref, err)
	}
	id := strings.TrimSpace(string(out))
	defer func() { _ = exec.Command("docker", "rm", id).Run() }()
	if b, err := exec.Command("docker", "commit", "--change", "LABEL flynn.test.upgrade="+stamp, id, newRef).CombinedOutput(); err != nil {
		t.Fatalf("docker commit %s: %v\n%s", newRef, err, b)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", newRef).Run() })
	return newRef
}

// upgradeCommand runs `flynn-host upgrade` with the images manifest at
// path and returns its output.
func upgradeCommand(t *testing.T, repo, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/local/bin/flynn-host", "upgrade", "--images", path, filepath.Join(repo, "bootstrap", "manifest.json"))
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "FLYNN_CLUSTER_KEY="+clusterKey(t))
	b, err := cmd.CombinedOutput()
	t.Logf("flynn-host upgrade --images %s:\n%s", path, b)
	if err != nil {
		t.Fatalf("flynn-host upgrade: %v", err)
	}
	return string(b)
}

// onImages checks that every live job of a component (a job whose app is
// named like an image of manifest) runs that image.
func onImages(ctx context.Context, hosts *hostclient.Client, manifest images.Manifest) error {
	jobs, err := hosts.ListJobs(ctx)
	if err != nil {
		return err
	}
	var wrong []string
	for _, j := range jobs {
		if j.State.Terminal() || j.Job == nil {
			continue
		}
		name := j.Job.Metadata[controller.JobMetaAppName]
		want, ok := manifest[name]
		if !ok || j.Job.Metadata[controller.JobMetaType] == "" {
			continue // an app's job, or a one-off
		}
		if j.Job.Artifact != want.Ref {
			wrong = append(wrong, fmt.Sprintf("%s runs %s, not %s", name, j.Job.Artifact, want.Ref))
		}
	}
	if len(wrong) > 0 {
		slices.Sort(wrong)
		return fmt.Errorf("%s", strings.Join(wrong, "; "))
	}
	return nil
}
