package gitreceive

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// ReleaseProcessType is the Procfile's release phase (Heroku's): a command
// a push runs once, as a one-off job of its new release, before deploying
// it. It is left out of the release's process types, so it can never be
// scaled (the controller refuses a formation that names a type the
// release lacks); the job runs `start release`, which slugrunner resolves
// from the slug's own Procfile, or, for an image built from the app's
// Dockerfile, `/bin/sh -c CMD` in the image.
const ReleaseProcessType = "release"

// maxReleaseAttempts bounds how many releases a push makes, and runs the
// release command of, when the app's env keeps changing while the release
// command runs.
const maxReleaseAttempts = 3

// pushPatch is the release a push makes, as a patch of whichever release
// is the app's current one when the patch is applied.
type pushPatch struct {
	artifactID string
	// slugURL is the release's SLUG_URL; empty for an image, whose
	// release drops the SLUG_URL an earlier slug release left.
	slugURL   string
	processes map[string]controller.ProcessType
	meta      map[string]string
	// appJSON are the variables app.json gives a new app: each is set
	// only when the release patched lacks it, so a value set meanwhile
	// (`flynn env set` during the build) stays.
	appJSON map[string]string
	// image is true for a release of an image built from the app's
	// Dockerfile: its commands run in the image, not through slugrunner.
	image bool
	// releaseArgs are the args of the one-off job that runs the release
	// phase; nil when the app has none.
	releaseArgs []string
}

// patch is the patch of base (nil: the app has no release).
func (pp *pushPatch) patch(base *controller.Release) controller.ReleasePatch {
	set := map[string]string{}
	if pp.slugURL != "" {
		set["SLUG_URL"] = pp.slugURL
	}
	for k, v := range pp.appJSON {
		if _, ok := baseEnv(base)[k]; !ok {
			set[k] = v
		}
	}
	var unset []string
	if _, ok := set["SLUG_URL"]; !ok && pp.slugURL == "" {
		unset = []string{"SLUG_URL"} // an image runs no slug; an unset name is ignored
	}
	return controller.ReleasePatch{
		ArtifactID: pp.artifactID,
		Processes:  pp.processes,
		Meta:       pp.meta,
		Env:        &controller.EnvPatch{Set: set, Unset: unset},
	}
}

// env is the env of the release the patch makes of base. Everything else
// of that release comes from the patch alone.
func (pp *pushPatch) env(base *controller.Release) map[string]string {
	env := maps.Clone(baseEnv(base))
	if env == nil {
		env = map[string]string{}
	}
	p := pp.patch(base).Env
	maps.Copy(env, p.Set)
	for _, k := range p.Unset {
		delete(env, k)
	}
	return env
}

// commandArgs are the args of a one-off job of the push's release that
// runs line, a command line.
func (pp *pushPatch) commandArgs(line string) []string {
	if pp.image {
		return imageCommand(line)
	}
	// One argument: slugrunner runs it as a command line, as Heroku does.
	return []string{line}
}

func baseEnv(rel *controller.Release) map[string]string {
	if rel == nil {
		return nil
	}
	return rel.Env
}

// currentRelease is the app's current release, nil when it has none.
func (b *builder) currentRelease(ctx context.Context, appID string) (*controller.Release, error) {
	rel, err := b.c.AppRelease(ctx, appID)
	if httpjson.IsNotFound(err) {
		return nil, nil
	}
	return rel, err
}

// releasePhase makes the push's release without deploying it, runs the
// release command as a one-off job of it, and deploys it when the command
// succeeds. A failure deploys nothing: the app keeps serving its current
// release.
//
// The release is made from the app's current release, and an `env set`
// may make a newer one while the command runs. Deploying the push's
// release then would undo that change, so the push checks first: when
// the current release is no longer one the push's release could have
// been made from (its env differs), the push makes its release again from
// the new current one and runs the release command again (the change may
// matter to it: a new DATABASE_URL), at most maxReleaseAttempts times. A
// change that lands between that check and the deploy is kept by
// keepEnvChange.
func (b *builder) releasePhase(ctx context.Context, app *controller.App, pp *pushPatch, out io.Writer, log *slog.Logger) (*controller.Release, *controller.Deployment, error) {
	for attempt := 1; ; attempt++ {
		base, err := b.currentRelease(ctx, app.ID)
		if err != nil {
			return nil, nil, b.internal(log, "read the app's release", err)
		}
		p := pp.patch(base)
		p.NoDeploy = true
		patched, err := b.c.PatchRelease(ctx, app.ID, p)
		if err != nil {
			return nil, nil, b.internal(log, "create the release", err)
		}
		rel := patched.Release
		if patched.Deployment != nil || rel == nil {
			return nil, nil, b.internal(log, "create the release", fmt.Errorf("the controller ignored no_deploy (deployment %v)", patched.Deployment))
		}
		fmt.Fprintf(out, "-----> Running release command...\n")
		status, err := b.runOneOff(ctx, app, rel, pp.releaseArgs, "release", out, log)
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if err != nil {
			return nil, nil, &userError{fmt.Sprintf("Release command failed: %v%s", err, b.staysAt(ctx, app))}
		}
		if status != 0 {
			return nil, nil, &userError{fmt.Sprintf("Release command failed (exit status %d)%s", status, b.staysAt(ctx, app))}
		}
		cur, err := b.currentRelease(ctx, app.ID)
		if err != nil {
			return nil, nil, b.internal(log, "read the app's release", err)
		}
		if maps.Equal(rel.Env, pp.env(cur)) {
			d, err := b.c.Deploy(ctx, app.ID, rel.ID)
			if err != nil {
				return nil, nil, b.internal(log, "deploy", err)
			}
			return b.keepEnvChange(ctx, app, pp, rel, cur, d, out, log)
		}
		if attempt == maxReleaseAttempts {
			return nil, nil, &userError{fmt.Sprintf("Release abandoned: %s's env changed each time the release command ran (%d times)%s; push again", app.Name, attempt, b.staysAt(ctx, app))}
		}
		log.Info("env changed during the release command", "release", rel.ID, "now", cur.ID)
		fmt.Fprintf(out, "-----> %s's env changed while the release command ran (now %s); releasing again from it...\n", app.Name, controller.ReleaseVersion(cur.Version))
	}
}

// keepEnvChange makes sure that the deploy d of rel, the push's release,
// checked against checked (the app's release just before), undid no env
// change. The deployment names the release it replaced: when that is not
// checked, a change came in between, and if the push's release lacks it,
// a patch puts it back (atomically, on whatever is current then), and that
// patch's deployment is the one to follow.
func (b *builder) keepEnvChange(ctx context.Context, app *controller.App, pp *pushPatch, rel, checked *controller.Release, d *controller.Deployment, out io.Writer, log *slog.Logger) (*controller.Release, *controller.Deployment, error) {
	if (checked != nil && d.OldReleaseID == checked.ID) || (checked == nil && d.OldReleaseID == "") {
		return rel, d, nil
	}
	replaced, err := b.c.Release(ctx, d.OldReleaseID)
	if err != nil {
		return nil, nil, b.internal(log, "read the release the deploy replaced", err)
	}
	fix := envDiff(rel.Env, pp.env(replaced))
	if fix == nil {
		return rel, d, nil
	}
	patched, err := b.c.PatchRelease(ctx, app.ID, controller.ReleasePatch{Env: fix})
	if err != nil {
		return nil, nil, b.internal(log, "keep the env change made during the deploy", err)
	}
	if patched.Deployment == nil {
		return rel, d, nil // already back: someone made it again
	}
	log.Info("env changed as the release was deployed; made again", "release", rel.ID, "replaced", replaced.ID, "now", patched.Release.ID)
	fmt.Fprintf(out, "-----> %s's env changed as %s was deployed; %s keeps that change\n", app.Name, controller.ReleaseVersion(rel.Version), controller.ReleaseVersion(patched.Release.Version))
	return patched.Release, patched.Deployment, nil
}

// envDiff is the patch that turns env have into want; nil when they are
// equal.
func envDiff(have, want map[string]string) *controller.EnvPatch {
	p := &controller.EnvPatch{Set: map[string]string{}}
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			p.Set[k] = v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[k]; !ok {
			p.Unset = append(p.Unset, k)
		}
	}
	if len(p.Set) == 0 && len(p.Unset) == 0 {
		return nil
	}
	return p
}

// staysAt ends a failure message with what the app still runs: "; APP
// stays at vN", or that nothing was deployed when it has not run any code
// yet. It says nothing when it cannot tell.
func (b *builder) staysAt(ctx context.Context, app *controller.App) string {
	cur, err := b.currentRelease(ctx, app.ID)
	switch {
	case err != nil:
		return ""
	case cur == nil || cur.ArtifactID == "":
		return "; nothing was deployed"
	}
	return fmt.Sprintf("; %s stays at %s", app.Name, controller.ReleaseVersion(cur.Version))
}

// postdeploy runs app.json's postdeploy script once, as a one-off job of
// the app's first release, after its deploy. A failure fails the push,
// but the deploy stays, and since the app now runs code, no later push
// runs the script again.
func (b *builder) postdeploy(ctx context.Context, app *controller.App, rel *controller.Release, pp *pushPatch, script string, out io.Writer, log *slog.Logger) error {
	fmt.Fprintf(out, "-----> Running postdeploy script (app.json)...\n")
	status, err := b.runOneOff(ctx, app, rel, pp.commandArgs(script), "postdeploy", out, log)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	stays := fmt.Sprintf("%s stays deployed and later pushes do not run the script again", controller.ReleaseVersion(rel.Version))
	if err != nil {
		return &userError{fmt.Sprintf("postdeploy script failed: %v; %s", err, stays)}
	}
	if status != 0 {
		return &userError{fmt.Sprintf("postdeploy script failed (exit status %d); %s", status, stays)}
	}
	return nil
}

// appURL is the URL of the app's first HTTP route (by creation: the
// default route the controller makes with the app comes first), https
// when the route carries a certificate; "" when the app has none. A
// wildcard domain names no one URL and is passed over.
func (b *builder) appURL(ctx context.Context, app *controller.App, log *slog.Logger) string {
	routes, err := b.c.AppRoutes(ctx, app.ID)
	if err != nil {
		log.Warn("list the app's routes", "err", err)
		return ""
	}
	for _, r := range routes {
		if r.Type != controller.RouteTypeHTTP || r.Domain == "" || r.Domain[0] == '*' {
			continue
		}
		scheme, path := "http", r.Path
		if r.Certificate != nil {
			scheme = "https"
		}
		if path == "" {
			path = "/"
		}
		return scheme + "://" + r.Domain + path
	}
	return ""
}
