package cli

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/controllertest"
	"github.com/openflynn/flynn/controller/server"
	"github.com/openflynn/flynn/host/hosttest"
)

// memImages keeps uploaded image archives in memory.
type memImages struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

var _ server.ImageStore = (*memImages)(nil)

func (m *memImages) Put(_ context.Context, path string, r io.Reader) (*blobstore.Info, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blobs[path] = data
	return &blobstore.Info{Path: path, Size: int64(len(data))}, nil
}

func (m *memImages) Delete(_ context.Context, path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blobs, path)
	return nil
}

func (m *memImages) URL(path string) string { return "http://blobstore.test/" + path }

func (m *memImages) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.blobs)
}

// newDockerHarness is the CLI harness against a controller that keeps
// uploaded images (in memory), sharing the harness's fake runner.
func newDockerHarness(t *testing.T) (*harness, *memImages) {
	t.Helper()
	h := newHarness(t)
	images := &memImages{blobs: map[string][]byte{}}
	ctrl := controllertest.New(t, pg.Server(t).NewDatabase(t), controllertest.Options{
		Key: testKey, Runner: h.runner, Images: images,
		CompleteDeployments: func(d *controller.Deployment) bool {
			_, own := h.runner.ownDeploys.Load(d.AppID)
			return !own
		},
	})
	h.url, h.api = ctrl.URL(), client.New(ctrl.URL(), testKey)
	f, err := config.Load(h.env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := f.Cluster("")
	if err != nil {
		t.Fatal(err)
	}
	cl.ControllerURL = ctrl.URL()
	if err := f.Save(h.env.ConfigPath); err != nil {
		t.Fatal(err)
	}
	return h, images
}

// TestDockerPush: an image of the local engine becomes a release of the
// app with the app's env, its web process on the image's exposed port,
// and the push waits for the deployment.
func TestDockerPush(t *testing.T) {
	dc := hosttest.Docker(t)
	image := hosttest.TinyImage(t, dc, "EXPOSE 53/udp", "EXPOSE 7000", "USER 1000", `CMD ["/hello"]`)
	h, images := newDockerHarness(t)
	app := h.app("echo")
	h.ok("-a", "echo", "env", "set", "GREETING=hi")

	out := h.ok("-a", "echo", "docker", "push", image, "--tcp")
	for _, want := range []string{"Uploading image " + image, "Uploaded ", "Deployed release v2 of echo in "} {
		if !strings.Contains(out, want) {
			t.Errorf("push printed %q, want %q in it", out, want)
		}
	}
	ctx := context.Background()
	rel, err := h.api.AppRelease(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	art, err := h.api.Artifact(ctx, rel.ArtifactID)
	if err != nil {
		t.Fatal(err)
	}
	if art.Type != controller.ArtifactTypeDockerArchive || art.Meta[controller.ImageMetaName] != image || images.count() != 1 {
		t.Errorf("artifact %+v (%d blobs), want the docker-archive of %s", art, images.count(), image)
	}
	wantProcs := map[string]controller.ProcessType{"web": {Ports: []controller.Port{{Target: 7000, Proto: "tcp"}}, Service: "echo-web"}}
	if rel.Version != 2 || rel.Env["GREETING"] != "hi" || !reflect.DeepEqual(rel.Processes, wantProcs) || rel.Meta["docker_image"] != image {
		t.Errorf("release v%d env %v processes %+v meta %v; want v2 with GREETING=hi and %+v", rel.Version, rel.Env, rel.Processes, rel.Meta, wantProcs)
	}

	// A Procfile replaces the process types; web keeps the port.
	procfile := filepath.Join(t.TempDir(), "Procfile")
	if err := os.WriteFile(procfile, []byte("web: python3 -m http.server 7000\nworker: sleep infinity\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.ok("-a", "echo", "docker", "push", image, "--procfile", procfile)
	rel, err = h.api.AppRelease(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantProcs = map[string]controller.ProcessType{
		"web":    {Cmd: []string{"/bin/sh", "-c", "python3 -m http.server 7000"}, Ports: []controller.Port{{Target: 7000, Proto: "http"}}, Service: "echo-web"},
		"worker": {Cmd: []string{"/bin/sh", "-c", "sleep infinity"}},
	}
	if rel.Version != 3 || !reflect.DeepEqual(rel.Processes, wantProcs) {
		t.Errorf("release v%d processes %+v, want v3 with %+v", rel.Version, rel.Processes, wantProcs)
	}
}

// TestDockerPushProgress: on a terminal the push shows the bytes sent.
func TestDockerPushProgress(t *testing.T) {
	dc := hosttest.Docker(t)
	image := hosttest.TinyImage(t, dc)
	h, _ := newDockerHarness(t)
	h.app("echo")
	h.env.Terminal = &fakeTerminal{resizes: make(chan struct{})}
	res := h.run("-a", "echo", "docker", "push", image, "--no-wait")
	if res.code != 0 || !strings.Contains(res.stderr, "\r"+image+": ") || !strings.HasSuffix(res.stderr, " sent\n") {
		t.Fatalf("push on a terminal: exit %d, stderr %q; want the bytes sent", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, "Created release v1 of echo; it is deploying.") {
		t.Errorf("push --no-wait printed %q", res.stdout)
	}
}

// TestDockerPushFailedDeploy: a push whose deployment fails shows the
// crash, exits 1 and leaves the app at its release.
func TestDockerPushFailedDeploy(t *testing.T) {
	dc := hosttest.Docker(t)
	image := hosttest.TinyImage(t, dc, "EXPOSE 7000")
	h, _ := newDockerHarness(t)
	app := h.app("echo")
	v1 := h.deploy(app, map[string]string{"CRASH": "1"}) // the push's release crashes
	if err := h.api.PutFormation(context.Background(), &controller.Formation{AppID: app.ID, ReleaseID: v1.ID, Processes: map[string]int{"web": 1}}); err != nil {
		t.Fatal(err)
	}
	fakeDeployer(t, h, app)
	res := h.run("-a", "echo", "docker", "push", image)
	if res.code != 1 || !strings.Contains(res.stderr, "deploy of release v2 failed") || !strings.Contains(res.stderr, "echo stays at v1") {
		t.Fatalf("push of a crashing release: exit %d, stderr %q", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, "exited with status 2; its last lines:") {
		t.Errorf("push did not show the crash:\n%s", res.stdout)
	}
	if cur, err := h.api.AppRelease(context.Background(), app.ID); err != nil || cur.ID != v1.ID {
		t.Fatalf("app at %+v, %v; want v1", cur, err)
	}
}

func TestDockerPushRefused(t *testing.T) {
	dc := hosttest.Docker(t)
	h, images := newDockerHarness(t)
	h.app("echo")
	badProcfile := filepath.Join(t.TempDir(), "Procfile")
	if err := os.WriteFile(badProcfile, []byte("web ./run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.fails("is not in your Docker engine", "-a", "echo", "docker", "push", "flynn-test-no-such-image:none")
	h.fails("want one IMAGE", "-a", "echo", "docker", "push")
	h.fails("--procfile "+badProcfile+": invalid Procfile, line 1", "-a", "echo", "docker", "push", hosttest.TinyImage(t, dc), "--procfile", badProcfile)
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no.sock"))
	h.fails("no Docker engine answers at unix://", "-a", "echo", "docker", "push", "anything")
	if images.count() != 0 {
		t.Errorf("%d images uploaded, want none", images.count())
	}
}
