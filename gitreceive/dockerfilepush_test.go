package gitreceive_test

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/gitreceive"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/random"
)

// fakeImageBuilds answers POST /apps/:id/images/build as the controller's
// build service does: it reads the build context (kept for the test),
// streams lines as NDJSON, then the artifact of the built image, made in
// the controller's store as an uploaded image's is (a docker-archive
// artifact with the image's config as meta), or the build's error.
type fakeImageBuilds struct {
	// lines are the build's output.
	lines []string
	// err, when set, is the message of the build's error event.
	err string
	// meta is the built image's artifact meta.
	meta map[string]string
	// hang makes builds run, after their lines, until their request ends.
	hang bool

	store *postgres.Store // the harness's controller's

	mu       sync.Mutex
	contexts []map[string]string // each build's context: file name → content
	apps     []string            // each build's app, as the request names it
	stopped  int                 // hanging builds whose request ended
}

func (f *fakeImageBuilds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	files, err := tarFiles(r.Body)
	if err != nil {
		httpjson.WriteError(w, httpjson.ValidationError("body", "not a tar: %v", err))
		return
	}
	app := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/apps/"), "/images/build")
	f.mu.Lock()
	f.contexts = append(f.contexts, files)
	f.apps = append(f.apps, app)
	lines, buildErr, meta, hang := slices.Clone(f.lines), f.err, maps.Clone(f.meta), f.hang
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for _, l := range lines {
		_ = enc.Encode(controller.ImageBuildEvent{Line: l})
	}
	if hang {
		http.NewResponseController(w).Flush()
		<-r.Context().Done() // the client went: the build stops, as the controller's does
		f.mu.Lock()
		f.stopped++
		f.mu.Unlock()
		return
	}
	if buildErr != "" {
		_ = enc.Encode(controller.ImageBuildEvent{Error: &controller.ImageBuildError{Code: string(httpjson.CodeValidation), Message: buildErr}})
		return
	}
	art := &controller.Artifact{Type: controller.ArtifactTypeDockerArchive, URI: blobstoreURL + "/images/" + random.UUID() + ".tar", Meta: meta}
	if err := f.store.Artifacts.Create(r.Context(), art); err != nil {
		_ = enc.Encode(controller.ImageBuildEvent{Error: &controller.ImageBuildError{Code: "internal_error", Message: err.Error()}})
		return
	}
	_ = enc.Encode(controller.ImageBuildEvent{Artifact: art})
}

// stoppedBuilds is how many hanging builds were stopped.
func (f *fakeImageBuilds) stoppedBuilds() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stopped
}

// builds returns the contexts and apps of the builds so far.
func (f *fakeImageBuilds) builds() ([]map[string]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.contexts), slices.Clone(f.apps)
}

// tarFiles reads a tar's regular files.
func tarFiles(r io.Reader) (map[string]string, error) {
	files := map[string]string{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[hdr.Name] = string(data)
	}
}

// imageMeta is the meta of the image the sample Dockerfile app builds.
func imageMeta() map[string]string {
	return map[string]string{
		controller.ImageMetaID:           "sha256:" + strings.Repeat("ab", 32),
		controller.ImageMetaExposedPorts: `["8080/tcp"]`,
		controller.ImageMetaCmd:          `["python3","-u","/srv/server.py"]`,
		controller.ImageMetaUser:         "1000",
	}
}

const sampleDockerfile = "ARG STACK=flynn/stack\nFROM ${STACK}\nCOPY server.py /srv/server.py\nEXPOSE 8080\nUSER 1000\nCMD [\"python3\", \"-u\", \"/srv/server.py\"]\n"

// TestPushDockerfile: an app that no buildpack builds but that has a
// Dockerfile is built by the cluster from the commit's tree, with the
// build's output shown, and its image deployed: the image's command as
// the web type on the port it exposes. A slug release before it leaves
// no SLUG_URL behind, and the app's env stays.
func TestPushDockerfile(t *testing.T) {
	builds := &fakeImageBuilds{
		lines: []string{"Step 1/6 : ARG STACK=flynn/stack", "Step 2/6 : FROM ${STACK}", " ---> Running in 0123456789ab", "Successfully built 0123456789ab"},
		meta:  imageMeta(),
	}
	h := newHarnessWith(t, harnessOptions{imageBuilds: builds})
	app := h.createApp("example")
	ctx := t.Context()
	h.setEnv(app, map[string]string{"GREETING": "hi"}) // v1
	w := h.newWorkdir("example")
	w.commit("slug", map[string]string{"Procfile": "web: ./web\n"})
	if out, _, err := w.push("main"); err != nil {
		t.Fatalf("push of the buildpack app: %v\n%s", err, out)
	}
	commit := w.commit("dockerfile", map[string]string{"Procfile": "", "Dockerfile": sampleDockerfile, "server.py": "print('hi')\n", "static/page.txt": "page\n"})

	out := w.pushOK(t, "main")
	expectLines(t, out,
		"remote: -----> No buildpack matches; building the Dockerfile",
		"remote: -----> Building the Dockerfile on the cluster...",
		"remote:        Step 1/6 : ARG STACK=flynn/stack",
		"remote:        Step 2/6 : FROM ${STACK}",
		"remote:         ---> Running in 0123456789ab",
		"remote:        Successfully built 0123456789ab",
		"remote: -----> Deploying release v3 (process types: web)...",
		"remote: =====> Application deployed",
	)
	if strings.Contains(out, "FLYNN_BUILD_DOCKERFILE") {
		t.Errorf("the machine-readable Dockerfile line reached the user:\n%s", out)
	}

	contexts, apps := builds.builds()
	wantContext := map[string]string{"Dockerfile": sampleDockerfile, "server.py": "print('hi')\n", "static/page.txt": "page\n"}
	if len(contexts) != 1 || !maps.Equal(contexts[0], wantContext) || apps[0] != app.ID {
		t.Fatalf("builds = %v of apps %v; want one of %s, the commit's tree %v", contexts, apps, app.ID, wantContext)
	}

	rel, err := h.client.AppRelease(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	art, err := h.client.Artifact(ctx, rel.ArtifactID)
	if err != nil || art.Type != controller.ArtifactTypeDockerArchive || art.Meta[controller.ImageMetaID] != imageMeta()[controller.ImageMetaID] {
		t.Fatalf("artifact = %+v, %v; want the built image's", art, err)
	}
	want := map[string]controller.ProcessType{"web": {Ports: []controller.Port{{Proto: "http", Target: 8080}}, Service: "example-web"}}
	if got, err := json.Marshal(rel.Processes); err != nil || string(got) != string(mustJSON(t, want)) {
		t.Errorf("processes = %s, want %s (the image's command, on its port)", got, mustJSON(t, want))
	}
	if _, ok := rel.Env["SLUG_URL"]; ok || rel.Env["GREETING"] != "hi" {
		t.Errorf("env = %v, want GREETING kept and no SLUG_URL", rel.Env)
	}
	if rel.Meta["commit"] != commit || rel.Meta["git"] != "true" {
		t.Errorf("meta = %v, want the commit's", rel.Meta)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestPushDockerfileProcfile: a Procfile names an image's process types,
// run with /bin/sh -c in the image, and its release type is the release
// phase, run the same way as a one-off job of the image's release.
func TestPushDockerfileProcfile(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{imageBuilds: &fakeImageBuilds{meta: imageMeta()}})
	app := h.createApp("example")
	ctx := t.Context()
	w := h.newWorkdir("example")
	w.commit("first", map[string]string{
		"Dockerfile": sampleDockerfile,
		"Procfile":   "web: python3 /srv/server.py --port 8080\nworker: python3 /srv/worker.py\nrelease: echo \"migrating as $0\"\n",
	})
	out := w.pushOK(t, "main")
	expectLines(t, out,
		"remote: -----> Running release command...",
		"remote: migrating as /bin/sh",
		"remote: -----> Deploying release v1 (process types: web, worker)...",
	)
	rel, err := h.client.AppRelease(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]controller.ProcessType{
		"web":    {Cmd: []string{"/bin/sh", "-c", "python3 /srv/server.py --port 8080"}, Ports: []controller.Port{{Proto: "http", Target: 8080}}, Service: "example-web"},
		"worker": {Cmd: []string{"/bin/sh", "-c", "python3 /srv/worker.py"}},
	}
	if got := mustJSON(t, rel.Processes); string(got) != string(mustJSON(t, want)) {
		t.Errorf("processes = %s, want %s", got, mustJSON(t, want))
	}
	jobs := h.runner.appJobs()
	if len(jobs) != 1 || jobs[0].Job.ReleaseID != rel.ID || jobs[0].Artifact.ID != rel.ArtifactID ||
		!slices.Equal(jobs[0].Job.Args, []string{"/bin/sh", "-c", `echo "migrating as $0"`}) || jobs[0].Job.Meta["flynn.push.phase"] != "release" {
		t.Fatalf("app jobs = %+v, want the release command in the image, of %s", jobs, rel.ID)
	}
}

// TestPushDockerfileBuildFails: the build's error fails the push with its
// message, after its output, and the app keeps its release.
func TestPushDockerfileBuildFails(t *testing.T) {
	builds := &fakeImageBuilds{meta: imageMeta()}
	h := newHarnessWith(t, harnessOptions{imageBuilds: builds})
	app := h.createApp("example")
	w := h.newWorkdir("example")
	w.commit("first", map[string]string{"Dockerfile": sampleDockerfile, "server.py": "x\n"})
	if out, _, err := w.push("main"); err != nil {
		t.Fatalf("first push: %v\n%s", err, out)
	}
	v1, err := h.client.AppRelease(t.Context(), app.ID)
	if err != nil {
		t.Fatal(err)
	}

	builds.mu.Lock()
	builds.lines = []string{"Step 3/7 : RUN exit 3", " ---> Running in 0123456789ab"}
	builds.err = "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
	builds.mu.Unlock()
	w.commit("broken", map[string]string{"Dockerfile": sampleDockerfile + "RUN exit 3\n"})
	out, _, err := w.push("main")
	if err == nil {
		t.Fatalf("a push whose image build failed succeeded:\n%s", out)
	}
	expectLines(t, out,
		"remote:        Step 3/7 : RUN exit 3",
		"remote:  !     Build failed: The command '/bin/sh -c exit 3' returned a non-zero code: 3",
	)
	if strings.Contains(out, "Deploying release") || !strings.Contains(out, "pre-receive hook declined") {
		t.Errorf("a failed build was deployed, or the push not refused:\n%s", out)
	}
	if cur, err := h.client.AppRelease(t.Context(), app.ID); err != nil || cur.ID != v1.ID {
		t.Fatalf("current release after the failed build = %+v, %v; want v1", cur, err)
	}
}

// TestPushDockerfileTimeout: the image build counts against the build's
// time: when that is up the build is stopped and the push fails, as a
// buildpack build that does not finish.
func TestPushDockerfileTimeout(t *testing.T) {
	builds := &fakeImageBuilds{lines: []string{"Step 1/2 : FROM flynn/stack"}, hang: true}
	h := newHarnessWith(t, harnessOptions{imageBuilds: builds, config: func(c *gitreceive.Config) { c.BuildTimeout = 2 * time.Second }})
	app := h.createApp("example")
	w := h.newWorkdir("example")
	w.commit("first", map[string]string{"Dockerfile": sampleDockerfile})
	out, _, err := w.push("main")
	if err == nil || !hasLine(out, "remote:        Step 1/2 : FROM flynn/stack") || !hasLine(out, "remote:  !     Build failed: not finished after 2s") {
		t.Fatalf("push of an image build that hangs: %v\n%s", err, out)
	}
	poll.Until(t, 30*time.Second, "the image build to be stopped", func() bool { return builds.stoppedBuilds() == 1 })
	if _, err := h.client.AppRelease(t.Context(), app.ID); !httpjson.IsNotFound(err) {
		t.Fatalf("a timed-out build left a release (err %v)", err)
	}
}
