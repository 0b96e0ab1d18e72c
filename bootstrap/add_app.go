package bootstrap

import (
	"context"
	"fmt"
	"strings"

	"github.com/openflynn/flynn/controller"
)

// addApp records apps that run-app started (before the controller could
// hold them) in the controller, under the ids their jobs carry: from then
// on the scheduler keeps them running.
type addApp struct {
	stepHead
	// FromSteps are run-app step ids.
	FromSteps []string `json:"from_steps"`
}

func (a *addApp) run(ctx context.Context, r *run, _ string) (string, error) {
	if len(a.FromSteps) == 0 {
		return "", fmt.Errorf("from_steps is empty")
	}
	var names []string
	for _, s := range a.FromSteps {
		app := r.apps[s]
		if app == nil {
			return "", fmt.Errorf("from_steps: %q is no earlier run-app step", s)
		}
		if err := r.record(ctx, app); err != nil {
			return "", fmt.Errorf("%s: %w", s, err)
		}
		names = append(names, app.spec.App.Name)
	}
	return strings.Join(names, " "), nil
}

// record creates the app, its artifact, release and formation in the
// controller, under the ids bootstrap chose. Every app bootstrap records is
// one of the platform's, so a system app: people's API keys cannot change
// it (see controller.App.System).
func (r *run) record(ctx context.Context, app *appState) error {
	if app.recorded {
		return fmt.Errorf("app %s is recorded already", app.spec.App.Name)
	}
	c, err := r.controller(ctx)
	if err != nil {
		return err
	}
	ref, err := r.image(app.spec.Image)
	if err != nil {
		return err
	}
	ca := app.spec.App
	ca.ID = app.appID
	ca.System = true
	if err := c.CreateApp(ctx, &ca); err != nil {
		return fmt.Errorf("create app %s: %w", ca.Name, err)
	}
	art := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: ref}
	if err := c.CreateArtifact(ctx, art); err != nil {
		return fmt.Errorf("create artifact %s: %w", ref, err)
	}
	rel := app.release
	rel.ArtifactID = art.ID
	if err := c.CreateRelease(ctx, &rel); err != nil {
		return fmt.Errorf("create release: %w", err)
	}
	if _, err := c.SetAppRelease(ctx, app.appID, rel.ID); err != nil {
		return fmt.Errorf("set release: %w", err)
	}
	if err := c.PutFormation(ctx, &controller.Formation{AppID: app.appID, ReleaseID: rel.ID, Processes: app.spec.Processes}); err != nil {
		return fmt.Errorf("put formation: %w", err)
	}
	app.release.ArtifactID = art.ID
	app.recorded = true
	return nil
}
