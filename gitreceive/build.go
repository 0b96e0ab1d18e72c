package gitreceive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/openflynn/flynn/blobstore/signed"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/random"
	"github.com/openflynn/flynn/pkg/stacks"
	"github.com/openflynn/flynn/slugbuilder"
)

// Metadata keys on build jobs.
const (
	BuildMetaAppID   = "flynn.build.app-id"
	BuildMetaAppName = "flynn.build.app-name"
	BuildMetaCommit  = "flynn.build.commit"
)

// builder runs the build and release of a push.
type builder struct {
	cfg     Config
	c       *client.Client
	log     *slog.Logger
	slots   *buildSlots
	metrics *serverMetrics

	mu             sync.Mutex
	builderRelease map[string]string // by stack: the release of its builder app running its slugbuilder image
	runnerArtifact map[string]string // by stack: the artifact of its slugrunner image
}

func newBuilder(cfg Config, c *client.Client, log *slog.Logger, m *serverMetrics) *builder {
	return &builder{cfg: cfg, c: c, log: log, slots: newBuildSlots(cfg.MaxBuilds), metrics: m,
		builderRelease: map[string]string{}, runnerArtifact: map[string]string{}}
}

// deployedBranches are the branches a push deploys, in order of preference.
var deployedBranches = []string{"refs/heads/main", "refs/heads/master"}

// run handles the ref updates of one push and returns the hook's exit
// status: 0 lets git update the refs, anything else rejects the push.
func (b *builder) run(ctx context.Context, p *push, updates []refUpdate, gitEnv map[string]string, out io.Writer) int {
	var deploy *refUpdate
	for _, name := range deployedBranches {
		for i, u := range updates {
			if u.Ref == name && u.New != zeroSHA && deploy == nil {
				deploy = &updates[i]
			}
		}
	}
	for _, u := range updates {
		short := strings.TrimPrefix(strings.TrimPrefix(u.Ref, "refs/heads/"), "refs/tags/")
		switch {
		case deploy != nil && u.Ref == deploy.Ref:
		case u.New == zeroSHA:
			fmt.Fprintf(out, "-----> Deleting %s (the running release is not affected)\n", short)
		case slices.Contains(deployedBranches, u.Ref):
			fmt.Fprintf(out, "-----> Storing %s; only %s is deployed in this push\n", short, strings.TrimPrefix(deploy.Ref, "refs/heads/"))
		default:
			fmt.Fprintf(out, "-----> Storing %s; only pushes to main or master are deployed\n", short)
		}
	}
	if deploy == nil {
		return 0
	}
	start := time.Now()
	log := p.log.With("commit", deploy.New)
	if err := b.buildAndDeploy(ctx, p, deploy.New, gitEnv, out, log); err != nil {
		if ctx.Err() != nil {
			log.Info("push cancelled: the client went away")
			return 1
		}
		fmt.Fprintf(out, " !     %v\n", err)
		log.Info("push failed", "err", err, "took", time.Since(start).Round(time.Millisecond))
		return 1
	}
	log.Info("push deployed", "took", time.Since(start).Round(time.Millisecond))
	return 0
}

// userError is a failure whose message is meant for the person pushing.
type userError struct{ msg string }

func (e *userError) Error() string { return e.msg }

func (b *builder) buildAndDeploy(ctx context.Context, p *push, commit string, gitEnv map[string]string, out io.Writer, log *slog.Logger) error {
	app := p.app
	prev, err := b.currentRelease(ctx, app.ID)
	if err != nil {
		return b.internal(log, "read the app's release", err)
	}
	// app.json is for an app's creation, as on Heroku: it counts until
	// the app first runs code. A push that failed deployed nothing, so
	// the next one is still the first.
	var manifest *appManifest
	var appJSONEnv map[string]string
	if prev == nil || prev.ArtifactID == "" {
		if manifest, err = b.appManifest(ctx, p.repo, commit, gitEnv, log); err != nil {
			return err
		}
	}
	if manifest != nil {
		if line := manifest.summary(); line != "" {
			fmt.Fprintln(out, line)
		}
		if appJSONEnv, err = manifest.resolveEnv(baseEnv(prev)); err != nil {
			return err
		}
	}
	st, err := b.chooseStack(ctx, p, commit, gitEnv, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "-----> Building %s...\n", app.Name)
	cluster, err := b.clusterBuildEnv(ctx)
	if err != nil {
		return b.internal(log, "read the cluster's build env", err)
	}
	env := buildEnv(cluster, prev, appJSONEnv)
	if env["STACK"] == "" {
		env["STACK"] = st.Name // what the buildpacks see, unless the app or the cluster says otherwise
	}
	res, err := b.build(ctx, p, commit, st, env, gitEnv, out, log)
	if err != nil {
		return err
	}
	// The release takes the app's env as the controller has it when it
	// makes the release, not prev's, which is as old as the build: an
	// `env set` or `env unset` made while this push built is kept.
	pp := &pushPatch{
		meta:    map[string]string{"git": "true", "commit": commit},
		appJSON: appJSONEnv,
	}
	if res.image != nil {
		if pp.processes, err = imageRelease(pp, app.Name, res); err != nil {
			return b.internal(log, "read the image's process types", err)
		}
	} else if err := b.slugRelease(ctx, pp, st, res, log); err != nil {
		return err
	}
	// Watching before deploying misses nothing the deployment does.
	watch, err := b.c.WatchDeployments(ctx, app.ID)
	if err != nil {
		return b.internal(log, "follow the deployment", err)
	}
	defer watch.Close()
	var (
		rel *controller.Release
		d   *controller.Deployment
	)
	if pp.releaseArgs != nil {
		if rel, d, err = b.releasePhase(ctx, app, pp, out, log); err != nil {
			return err
		}
	} else {
		base := prev
		if len(appJSONEnv) > 0 {
			// Which of app.json's variables the app lacks is decided
			// against its env as it is now, not before the build.
			if base, err = b.currentRelease(ctx, app.ID); err != nil {
				return b.internal(log, "read the app's release", err)
			}
		}
		patched, err := b.c.PatchRelease(ctx, app.ID, pp.patch(base))
		if err != nil {
			return b.internal(log, "create the release", err)
		}
		rel, d = patched.Release, patched.Deployment
		if d == nil {
			// Only a release equal to the current one changes nothing, and
			// every build has a slug or an image of its own.
			return b.internal(log, "deploy", fmt.Errorf("release %s was not deployed: it equals the current release", rel.ID))
		}
	}
	fmt.Fprintf(out, "-----> Deploying release %s (process types: %s)...\n", controller.ReleaseVersion(rel.Version), typeList(pp.processes))
	// A failed deployment leaves the app at the release it came from,
	// which is prev unless the env changed during the build.
	from := prev
	if d.OldReleaseID != "" && (prev == nil || prev.ID != d.OldReleaseID) {
		if from, err = b.c.Release(ctx, d.OldReleaseID); err != nil {
			from = nil // only the failure message names it
		}
	}
	if err := b.waitDeployment(ctx, watch, app, from, d, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "=====> Application deployed\n")
	if u := b.appURL(ctx, app, log); u != "" {
		fmt.Fprintf(out, "=====> %s\n", u)
	}
	if manifest != nil && manifest.postdeploy != "" {
		return b.postdeploy(ctx, app, rel, pp, manifest.postdeploy, out, log)
	}
	return nil
}

// slugRelease fills in pp, the release of a push, for a slug: stack st's
// slugrunner image runs it, fetching it from SLUG_URL.
func (b *builder) slugRelease(ctx context.Context, pp *pushPatch, st stacks.Stack, res *buildResult, log *slog.Logger) error {
	artifactID, err := b.slugrunnerArtifact(ctx, st)
	if err != nil {
		return b.internal(log, "create the artifact", err)
	}
	slugURL, err := b.blobURL(http.MethodGet, res.slugPath, time.Now().Add(SlugURLLifetime))
	if err != nil {
		return b.internal(log, "sign the slug URL", err)
	}
	processes := map[string]controller.ProcessType{}
	for name := range res.processes {
		if name == ReleaseProcessType {
			pp.releaseArgs = []string{"start", ReleaseProcessType} // run once, never scaled
			continue
		}
		// slugrunner resolves the command from the slug's Procfile or the
		// buildpack's defaults. A web type gets no explicit ports: the
		// scheduler gives web a port and the <app>-web service.
		processes[name] = controller.ProcessType{Cmd: []string{"start", name}}
	}
	pp.artifactID, pp.slugURL, pp.processes = artifactID, slugURL, processes
	return nil
}

// appManifest reads and parses the pushed commit's app.json; nil when
// there is none.
func (b *builder) appManifest(ctx context.Context, repo, commit string, gitEnv map[string]string, log *slog.Logger) (*appManifest, error) {
	data, err := b.readAppJSON(ctx, repo, commit, gitEnv)
	var uerr *userError
	switch {
	case errors.As(err, &uerr):
		return nil, err
	case err != nil:
		return nil, b.internal(log, "read app.json", err)
	case data == nil:
		return nil, nil
	}
	m, err := parseAppJSON(data)
	if err != nil {
		return nil, &userError{err.Error()}
	}
	return m, nil
}

// internal logs a failure the user cannot act on and reports it briefly.
func (b *builder) internal(log *slog.Logger, what string, err error) error {
	log.Error("push: "+what, "err", err)
	var apiErr *httpjson.Error
	if httpjson.IsCode(err, httpjson.CodeValidation) && asAPIError(err, &apiErr) {
		return &userError{fmt.Sprintf("could not %s: %s", what, apiErr.Message)}
	}
	return &userError{fmt.Sprintf("could not %s (see gitreceive's log)", what)}
}

func typeList[V any](types map[string]V) string {
	names := slices.Sorted(maps.Keys(types))
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// buildResult is what a successful build produced: a slug and its process
// types, or an image built from the app's Dockerfile and its Procfile.
type buildResult struct {
	slugPath  string
	processes map[string]string
	// image is the artifact of the image built from the Dockerfile; nil
	// for a slug.
	image *controller.Artifact
	// procfile is the pushed Procfile of an image's build, nil when the
	// commit has none.
	procfile map[string]string
}

// build waits for a build slot, runs the slugbuilder job with the commit's
// tree on its stdin and appEnv (see buildEnv) with the build's own
// variables, relays its output line by line and returns its process
// types; or, when the job leaves the app to its Dockerfile, has the
// cluster build the image (buildImage) in the same slot and time, and
// returns that. A build is counted from its slot on: a push whose client
// leaves while it waits for one built nothing.
func (b *builder) build(ctx context.Context, p *push, commit string, st stacks.Stack, appEnv, gitEnv map[string]string, out io.Writer, log *slog.Logger) (_ *buildResult, err error) {
	release, err := b.slots.acquire(ctx, func(running int) {
		fmt.Fprintf(out, "-----> Waiting for a build slot (%s running)...\n", plural(running, "build"))
	})
	if err != nil {
		return nil, err
	}
	defer release()
	start := time.Now()
	defer func() { b.metrics.buildEnded(ctx, start, err) }()
	relID, err := b.slugbuilderRelease(ctx, st)
	if err != nil {
		return nil, b.internal(log, "prepare the build", err)
	}
	slugPath := fmt.Sprintf("/apps/%s/slug-%s.tgz", p.app.ID, random.UUID())
	cachePath := fmt.Sprintf("/apps/%s/cache.tgz", p.app.ID)
	env := maps.Clone(appEnv)
	if env == nil {
		env = map[string]string{}
	}
	// The build is stopped at BuildTimeout; its URLs outlive it a little.
	expires := time.Now().Add(b.cfg.BuildTimeout + uploadMargin)
	for name, u := range map[string]struct{ method, path string }{
		"SLUG_PUT_URL":  {http.MethodPut, slugPath},
		"CACHE_URL":     {http.MethodGet, cachePath},
		"CACHE_PUT_URL": {http.MethodPut, cachePath},
	} {
		if env[name], err = b.blobURL(u.method, u.path, expires); err != nil {
			return nil, b.internal(log, "sign the build's URLs", err)
		}
	}
	env["SOURCE_VERSION"] = commit

	buildCtx, cancelBuild := context.WithTimeout(ctx, b.cfg.BuildTimeout)
	defer cancelBuild()
	timedOut := func() bool { return ctx.Err() == nil && buildCtx.Err() != nil }
	var wg sync.WaitGroup
	defer wg.Wait()
	job, err := b.c.RunJobAttached(buildCtx, b.builderApp(st), &controller.NewJob{
		ReleaseID: relID,
		Type:      BuildProcessType, // its limits
		Env:       env,
		Meta:      map[string]string{BuildMetaAppID: p.app.ID, BuildMetaAppName: p.app.Name, BuildMetaCommit: commit},
	})
	if err != nil {
		if timedOut() {
			return nil, b.timeout()
		}
		return nil, b.internal(log, "start the build", err)
	}
	defer job.Close()
	stop := context.AfterFunc(buildCtx, func() { job.Close() })
	defer stop()
	log = log.With("build.job", job.JobID)
	log.Info("build started")

	// The tree goes to the job's stdin while its output comes back. The
	// sender may be blocked writing to the job: closing the job (deferred
	// above: it runs after cancelTar and before wg.Wait) frees it.
	tarCtx, cancelTar := context.WithCancel(buildCtx)
	defer cancelTar()
	fw := &frameWriter{w: job}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := b.sendTree(tarCtx, p.repo, commit, gitEnv, fw); err != nil && tarCtx.Err() == nil {
			log.Warn("send the tree to the build", "err", err)
		}
	}()

	var (
		types      map[string]string
		dockerfile bool
	)
	lines := &lineWriter{out: out, hide: func(line string) bool {
		if t, ok := slugbuilder.ParseProcessTypesLine(line); ok {
			types = t
			return true
		}
		if slugbuilder.ParseDockerfileLine(line) {
			dockerfile = true
			return true
		}
		return false
	}}
	status, err := relayJob(job, lines, &lineWriter{out: out})
	if err != nil {
		var je *jobError
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case timedOut():
			log.Info("build timed out", "after", b.cfg.BuildTimeout)
			return nil, b.timeout()
		case errors.As(err, &je):
			log.Error("build job error", "err", je.msg)
			return nil, &userError{"Build failed: " + je.msg}
		}
		log.Error("build stream broke", "err", err)
		return nil, &userError{"Build failed: lost the connection to the build job"}
	}
	cancelTar()
	if status != 0 {
		log.Info("build failed", "exit", status)
		return nil, &userError{"Build failed"}
	}
	if dockerfile {
		// The slugbuilder job found no buildpack but a Dockerfile, and
		// built nothing: the cluster builds the image, within what is
		// left of this build's time and in its slot.
		procfile, err := b.imageProcfile(ctx, p.repo, commit, gitEnv, log)
		if err != nil {
			return nil, err
		}
		art, err := b.buildImage(buildCtx, p, commit, gitEnv, out, log)
		if err != nil {
			var apiErr *httpjson.Error
			switch {
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case timedOut():
				log.Info("image build timed out", "after", b.cfg.BuildTimeout)
				return nil, b.timeout()
			case asAPIError(err, &apiErr):
				log.Info("image build failed", "err", err)
				return nil, &userError{"Build failed: " + apiErr.Message}
			}
			log.Error("image build", "err", err)
			return nil, &userError{"Build failed: could not build the image (see gitreceive's log)"}
		}
		return &buildResult{image: art, procfile: procfile}, nil
	}
	if types == nil {
		return nil, &userError{"Build failed: the build reported no process types"}
	}
	return &buildResult{slugPath: slugPath, processes: types}, nil
}

func (b *builder) timeout() error {
	return &userError{fmt.Sprintf("Build failed: not finished after %s", b.cfg.BuildTimeout)}
}

// plural is "1 build" or "n builds".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// sendTree writes `git archive` of commit to the job's stdin, then its end.
func (b *builder) sendTree(ctx context.Context, repo, commit string, gitEnv map[string]string, fw *frameWriter) error {
	if err := b.archiveTree(ctx, repo, commit, gitEnv, func(p []byte) error { return fw.write(host.FrameStdin, p) }); err != nil {
		return err
	}
	return fw.write(host.FrameStdinEOF, nil)
}

// archiveTree passes `git archive` of commit (a tar of its tree) to write
// a piece at a time. After a failed write it reads git's output to its
// end, so that git exits, and returns the write's error.
func (b *builder) archiveTree(ctx context.Context, repo, commit string, gitEnv map[string]string, write func([]byte) error) error {
	cmd := b.gitCommand(ctx, repo, gitEnv, "archive", "--format=tar", commit)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	var werr error
	for {
		n, err := stdout.Read(buf)
		if n > 0 && werr == nil {
			werr = write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git archive: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return werr
}

// gitCommand is git in repo with the push's object directories (gitEnv:
// the pushed objects are in quarantine until the hook accepts them).
func (b *builder) gitCommand(ctx context.Context, repo string, gitEnv map[string]string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, b.cfg.GitPath, args...)
	cmd.Dir = repo
	cmd.Env = append([]string{"GIT_DIR=" + repo, "HOME=" + b.cfg.StateDir, "GIT_CONFIG_NOSYSTEM=1"}, envList(gitEnv)...)
	return cmd
}

func envList(m map[string]string) []string {
	var env []string
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	return env
}

// blobURL is the blobstore URL of path signed for method until expires:
// the only credential a job gets. Without a key (a blobstore that admits
// everyone) it is the plain URL.
func (b *builder) blobURL(method, path string, expires time.Time) (string, error) {
	if b.cfg.BlobstoreKey == "" {
		return strings.TrimRight(b.cfg.BlobstoreURL, "/") + path, nil
	}
	return signed.URL(b.cfg.BlobstoreURL, b.cfg.BlobstoreKey, method, path, expires)
}

// slugbuilderRelease returns the release of stack st's builder app that
// runs the stack's slugbuilder image, creating the app, artifact and
// release on first use.
func (b *builder) slugbuilderRelease(ctx context.Context, st stacks.Stack) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if id := b.builderRelease[st.Name]; id != "" {
		return id, nil
	}
	imgs, _ := b.imagesOf(st.Name)
	name := b.builderApp(st)
	app, err := b.c.App(ctx, name)
	if httpjson.IsNotFound(err) {
		app = &controller.App{Name: name, System: true} // build jobs are the platform's own
		if err = b.c.CreateApp(ctx, app); httpjson.IsCode(err, httpjson.CodeObjectExists) {
			app, err = b.c.App(ctx, name)
		}
	}
	if err != nil {
		return "", fmt.Errorf("builder app %s: %w", name, err)
	}
	build := controller.ProcessType{Resources: &controller.Resources{Memory: b.cfg.BuildMemory, MaxProcs: b.cfg.BuildPids, Disk: b.cfg.BuildDisk}}
	if rel, err := b.c.AppRelease(ctx, app.ID); err == nil && sameBuild(rel.Processes[BuildProcessType], build) {
		if art, err := b.c.Artifact(ctx, rel.ArtifactID); err == nil && art.URI == imgs.Slugbuilder {
			b.builderRelease[st.Name] = rel.ID
			return rel.ID, nil
		}
	}
	art := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: imgs.Slugbuilder}
	if err := b.c.CreateArtifact(ctx, art); err != nil {
		return "", fmt.Errorf("slugbuilder artifact: %w", err)
	}
	// The build process type only carries the build jobs' settings: no
	// formation names it, so nothing runs it but a push.
	rel := &controller.Release{AppID: app.ID, ArtifactID: art.ID, Processes: map[string]controller.ProcessType{BuildProcessType: build}}
	if err := b.c.CreateRelease(ctx, rel); err != nil {
		return "", fmt.Errorf("slugbuilder release: %w", err)
	}
	// No formation: the deployment is complete at once and runs nothing.
	if _, err := b.c.SetAppRelease(ctx, app.ID, rel.ID); err != nil {
		return "", fmt.Errorf("set the slugbuilder release: %w", err)
	}
	b.builderRelease[st.Name] = rel.ID
	return rel.ID, nil
}

// slugrunnerArtifact returns the artifact of stack st's slugrunner image,
// created once per process.
func (b *builder) slugrunnerArtifact(ctx context.Context, st stacks.Stack) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if id := b.runnerArtifact[st.Name]; id != "" {
		return id, nil
	}
	imgs, _ := b.imagesOf(st.Name)
	art := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: imgs.Slugrunner}
	if err := b.c.CreateArtifact(ctx, art); err != nil {
		return "", err
	}
	b.runnerArtifact[st.Name] = art.ID
	return art.ID, nil
}

// waitDeployment follows a deployment until the scheduler has finished it,
// showing each job of the new release that crashes with its last lines.
func (b *builder) waitDeployment(ctx context.Context, watch *client.DeploymentWatch, app *controller.App, prev *controller.Release, d *controller.Deployment, out io.Writer) error {
	waitCtx, cancel := context.WithTimeout(ctx, b.cfg.DeployTimeout)
	defer cancel()
	reported := map[string]bool{}
	d, err := watch.Wait(waitCtx, d, func(j *controller.Job) {
		if (j.State != controller.JobStateCrashed && j.State != controller.JobStateFailed) || reported[j.ID] {
			return
		}
		reported[j.ID] = true
		b.reportCrash(ctx, app, j, out)
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errorsIsDeadline(waitCtx) {
			return &userError{fmt.Sprintf("Deploy failed: not finished after %s (status %s)", b.cfg.DeployTimeout, d.Status)}
		}
		return &userError{fmt.Sprintf("Deploy failed: cannot follow the deployment: %v", err)}
	}
	if d.Status == controller.DeploymentComplete {
		return nil
	}
	msg := "Deploy failed"
	if d.Error != "" {
		msg += ": " + d.Error
	}
	if prev != nil && prev.ArtifactID != "" {
		msg += fmt.Sprintf("; %s stays at %s", app.Name, controller.ReleaseVersion(prev.Version))
	}
	return &userError{msg}
}

// reportCrash shows a crashed job of the new release: how it ended and its
// last lines, which usually say why.
func (b *builder) reportCrash(ctx context.Context, app *controller.App, j *controller.Job, out io.Writer) {
	how := "failed to start"
	if j.ExitStatus != nil {
		how = fmt.Sprintf("exited with status %d", *j.ExitStatus)
	}
	lines, err := b.c.LastLines(ctx, app.ID, j.ID, 10)
	if err != nil || len(lines) == 0 {
		fmt.Fprintf(out, " !     %s job %s %s\n", j.Type, j.ID, how)
		return
	}
	fmt.Fprintf(out, " !     %s job %s %s; its last lines:\n", j.Type, j.ID, how)
	for _, l := range lines {
		fmt.Fprintf(out, " !       %s", l)
	}
}

// sameBuild reports whether a release's build process type has the settings
// wanted, so a release made with other limits is replaced.
func sameBuild(have, want controller.ProcessType) bool {
	h, w := have.Resources, want.Resources
	return h != nil && w != nil && h.Memory == w.Memory && h.MaxProcs == w.MaxProcs && h.Disk == w.Disk
}
