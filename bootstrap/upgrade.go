package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// Upgrader is the part of the controller API Upgrade uses;
// *controller/client.Client implements it.
type Upgrader interface {
	App(ctx context.Context, idOrName string) (*controller.App, error)
	AppRelease(ctx context.Context, app string) (*controller.Release, error)
	Artifact(ctx context.Context, id string) (*controller.Artifact, error)
	CreateArtifact(ctx context.Context, a *controller.Artifact) error
	CreateRelease(ctx context.Context, rel *controller.Release) error
	Deploy(ctx context.Context, app, releaseID string) (*controller.Deployment, error)
	Deployment(ctx context.Context, app, id string) (*controller.Deployment, error)
}

// UpgradeConfig configures Upgrade.
type UpgradeConfig struct {
	// Controller is the cluster's controller, with the controller key
	// (required).
	Controller Upgrader
	// Images maps image keys to the references to move to: the images
	// manifest of the newer build.
	Images map[string]string
	// Out receives one line per component. Default io.Discard.
	Out io.Writer
	// Now is the clock of the durations reported. Default time.Now.
	Now func() time.Time
	// PollInterval is how often a deployment's status is read. Default
	// 500 ms.
	PollInterval time.Duration
	// DeployTimeout bounds the wait for each component's deployment.
	// Default 5 minutes.
	DeployTimeout time.Duration
	// ReadyTimeout bounds the wait for the controller to answer at all.
	// Default 2 minutes.
	ReadyTimeout time.Duration
}

// UpgradeOutcome is what Upgrade did with one component.
type UpgradeOutcome string

const (
	// UpgradeDeployed: a release with the new image was deployed.
	UpgradeDeployed UpgradeOutcome = "deployed"
	// UpgradeUpToDate: the app ran the wanted image already.
	UpgradeUpToDate UpgradeOutcome = "up to date"
	// UpgradeSkipped: the cluster has no such app.
	UpgradeSkipped UpgradeOutcome = "skipped"
)

// ComponentUpgrade is what Upgrade did with one component.
type ComponentUpgrade struct {
	// App is the app's name.
	App string
	// Outcome says whether the app was deployed, up to date or skipped.
	Outcome UpgradeOutcome
	// OldVersion is the version of the release the app ran before, and
	// NewVersion the one it runs now (the same unless deployed); both 0
	// when skipped.
	OldVersion, NewVersion int
	// Ref is the image reference the app runs now (empty when skipped).
	Ref string
	// Deployment is the id of the deployment, when deployed.
	Deployment string
	// Duration is how long the deployment took, when deployed.
	Duration time.Duration
}

// UpgradeResult is what an upgrade did.
type UpgradeResult struct {
	// Components are the manifest's apps, in manifest order, as far as the
	// upgrade got.
	Components []ComponentUpgrade
	// Duration is the upgrade's wall time.
	Duration time.Duration
}

// component is one app an upgrade may move: the image reference it should
// run and the env values that name images.
type component struct {
	app string
	ref string
	// env holds the release env values whose templates name images and
	// nothing else, expanded with the new images.
	env map[string]string
}

// Upgrade moves a bootstrapped cluster's components to the images of
// cfg.Images by ordinary controller deployments, one app at a time in
// manifest order (the scheduler first, see upgradePlan): for each app of a run-app, scale-app or deploy-app step
// whose image or image env differs from its current release's, it creates
// an artifact and a release (the current one's env, process types and meta
// with the new image) and deploys it, waiting for the deployment to finish
// before the next, since later components may depend on earlier ones. It
// prints one line per component to cfg.Out, never an env value.
//
// Each component begins with a wait of up to cfg.ReadyTimeout for the
// controller to answer, and failures to read a deployment are tolerated
// until cfg.DeployTimeout: the controller, its postgres or discoverd may be
// the component being replaced, or the host daemon may have just restarted.
//
// The first failure stops the upgrade; the result then holds the
// components done before it.
func Upgrade(ctx context.Context, cfg UpgradeConfig, m *Manifest, logger *slog.Logger) (*UpgradeResult, error) {
	if cfg.Controller == nil {
		return nil, errors.New("upgrade: Controller is required")
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.DeployTimeout <= 0 {
		cfg.DeployTimeout = 5 * time.Minute
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 2 * time.Minute
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	start := cfg.Now()
	// Every image is resolved before anything changes, so that a stale
	// images manifest fails the upgrade rather than half of it.
	plan, err := upgradePlan(m, cfg.Images)
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	res := &UpgradeResult{}
	for _, c := range plan {
		cu, err := upgradeComponent(ctx, cfg, c, logger)
		if err != nil {
			res.Duration = cfg.Now().Sub(start)
			return res, fmt.Errorf("upgrade %s: %w", c.app, err)
		}
		res.Components = append(res.Components, *cu)
	}
	res.Duration = cfg.Now().Sub(start)
	return res, nil
}

// upgradePlan returns the apps of the manifest's app steps in order, each
// once, with the images they should run.
func upgradePlan(m *Manifest, images map[string]string) ([]component, error) {
	seen := map[string]bool{}
	var plan []component
	for _, s := range m.Steps {
		switch s.Action {
		case "run-app", "scale-app", "deploy-app":
		default:
			continue
		}
		// runApp's fields are deploy-app's and scale-app's with app_step.
		var f runApp
		if err := json.Unmarshal(s.Raw, &f); err != nil {
			return nil, &StepError{ID: s.ID, Action: s.Action, Err: fmt.Errorf("decode: %w", err)}
		}
		// A run-app with app_step starts its scale-app step's app, which
		// that step covers.
		if f.AppStep != "" || f.Image == "" || f.App.Name == "" || seen[f.App.Name] {
			continue
		}
		seen[f.App.Name] = true
		ref, err := imageRef(images, f.Image)
		if err != nil {
			return nil, &StepError{ID: s.ID, Action: s.Action, Err: err}
		}
		env, err := imageEnv(f.Release.Env, images)
		if err != nil {
			return nil, &StepError{ID: s.ID, Action: s.Action, Err: err}
		}
		c := component{app: f.App.Name, ref: ref, env: env}
		if s.Action == "scale-app" {
			// The app bootstrap records but starts itself is the
			// scheduler, which carries out every other deployment: it
			// moves first, so that the newest deployment logic replaces
			// the rest (Postgres and discoverd stop-first, say).
			plan = slices.Insert(plan, 0, c)
			continue
		}
		plan = append(plan, c)
	}
	return plan, nil
}

// imageEnv returns the values of env templates that name images and
// nothing else ({{image.KEY}}, {{stacks.…}}), expanded with images. A
// value with any other reference (a generated secret, the domain) is the
// cluster's own: the current release has it, and an upgrade keeps it.
func imageEnv(tmpl map[string]string, images map[string]string) (map[string]string, error) {
	values := imageValues(images)
	fromImages := func(m []string) bool {
		return strings.HasPrefix(m[1], "image.") || strings.HasPrefix(m[1], "stacks.")
	}
	out := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(tmpl)) {
		refs := refPattern.FindAllStringSubmatch(tmpl[k], -1)
		if len(refs) == 0 || slices.ContainsFunc(refs, func(m []string) bool { return !fromImages(m) }) {
			continue
		}
		for _, m := range refs {
			if key, ok := strings.CutPrefix(m[1], "image."); ok {
				if _, err := imageRef(images, key); err != nil {
					return nil, fmt.Errorf("env %s: %w", k, err)
				}
			}
		}
		v, err := expandString(tmpl[k], values)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// upgradeComponent deploys one app's new image unless it runs it already.
func upgradeComponent(ctx context.Context, cfg UpgradeConfig, c component, logger *slog.Logger) (*ComponentUpgrade, error) {
	ctrl := cfg.Controller
	app, err := readApp(ctx, cfg, c.app)
	if httpjson.IsNotFound(err) {
		fmt.Fprintf(cfg.Out, "%s: not in this cluster; skipped\n", c.app)
		return &ComponentUpgrade{App: c.app, Outcome: UpgradeSkipped}, nil
	}
	if err != nil {
		return nil, err
	}
	cur, err := ctrl.AppRelease(ctx, app.ID)
	if err != nil {
		return nil, fmt.Errorf("read the current release: %w", err)
	}
	art, err := ctrl.Artifact(ctx, cur.ArtifactID)
	if err != nil {
		return nil, fmt.Errorf("read artifact %s of release v%d: %w", cur.ArtifactID, cur.Version, err)
	}
	envCurrent := true
	for k, v := range c.env {
		if cv, ok := cur.Env[k]; !ok || cv != v {
			envCurrent = false
		}
	}
	if art.URI == c.ref && envCurrent {
		fmt.Fprintf(cfg.Out, "%s: up to date (%s)\n", c.app, c.ref)
		return &ComponentUpgrade{App: c.app, Outcome: UpgradeUpToDate, OldVersion: cur.Version, NewVersion: cur.Version, Ref: c.ref}, nil
	}

	newArt := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: c.ref}
	if err := ctrl.CreateArtifact(ctx, newArt); err != nil {
		return nil, fmt.Errorf("create artifact %s: %w", c.ref, err)
	}
	// Clones, so that what was read stays as read. Process types are
	// values whose inner maps no one here changes.
	rel := &controller.Release{
		AppID:      app.ID,
		ArtifactID: newArt.ID,
		Env:        maps.Clone(cur.Env),
		Processes:  maps.Clone(cur.Processes),
		Meta:       maps.Clone(cur.Meta),
	}
	if len(c.env) > 0 && rel.Env == nil {
		rel.Env = map[string]string{}
	}
	maps.Copy(rel.Env, c.env)
	if err := ctrl.CreateRelease(ctx, rel); err != nil {
		return nil, fmt.Errorf("create release: %w", err)
	}

	began := cfg.Now()
	d, err := ctrl.Deploy(ctx, app.ID, rel.ID)
	if err != nil {
		return nil, fmt.Errorf("deploy release v%d: %w", rel.Version, err)
	}
	logger.Info("upgrade: deploying", "app", c.app, "from", cur.Version, "to", rel.Version, "ref", c.ref, "deployment", d.ID)
	if d, err = waitDeployment(ctx, cfg, app.ID, d, logger); err != nil {
		return nil, err
	}
	if d.Status == controller.DeploymentFailed {
		return nil, fmt.Errorf("deployment %s of v%d failed: %s", d.ID, rel.Version, d.Error)
	}
	took := cfg.Now().Sub(began)
	fmt.Fprintf(cfg.Out, "%s: v%d → v%d (%s) deployed in %.1fs\n", c.app, cur.Version, rel.Version, c.ref, took.Seconds())
	return &ComponentUpgrade{
		App: c.app, Outcome: UpgradeDeployed, OldVersion: cur.Version, NewVersion: rel.Version,
		Ref: c.ref, Deployment: d.ID, Duration: took,
	}, nil
}

// waitDeployment polls a deployment until it completes or fails. The
// deployment may be replacing the controller itself, its postgres or
// discoverd, so failures to read it are expected for a while and count
// only when DeployTimeout passes.
func waitDeployment(ctx context.Context, cfg UpgradeConfig, app string, d *controller.Deployment, logger *slog.Logger) (*controller.Deployment, error) {
	done := func(x *controller.Deployment) bool {
		return x.Status == controller.DeploymentComplete || x.Status == controller.DeploymentFailed
	}
	if done(d) {
		return d, nil
	}
	err := retry(ctx, cfg.PollInterval, cfg.DeployTimeout, func(ctx context.Context) (bool, error) {
		got, err := cfg.Controller.Deployment(ctx, app, d.ID)
		if err != nil {
			logger.Debug("upgrade: read deployment", "deployment", d.ID, "err", err)
			return false, err
		}
		d = got
		return done(d), nil
	})
	if err != nil {
		return nil, fmt.Errorf("deployment %s (%s): %w", d.ID, d.Status, err)
	}
	return d, nil
}

// readApp reads an app, waiting up to ReadyTimeout for the controller to
// answer at all: before the first component the host daemon may have just
// restarted with the new build, and after one the discoverd or controller
// that answers may be a new job that is still starting. An answer is the
// app or an error of the controller's own, such as not found, which it
// returns.
func readApp(ctx context.Context, cfg UpgradeConfig, name string) (*controller.App, error) {
	var app *controller.App
	var answer error
	err := retry(ctx, cfg.PollInterval, cfg.ReadyTimeout, func(ctx context.Context) (bool, error) {
		a, err := cfg.Controller.App(ctx, name)
		if err == nil || httpjson.IsRefusal(err) {
			app, answer = a, err
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return nil, fmt.Errorf("the controller does not answer: %w", err)
	}
	if answer != nil {
		return nil, fmt.Errorf("read the app: %w", answer)
	}
	return app, nil
}
