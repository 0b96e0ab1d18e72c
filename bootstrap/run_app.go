package bootstrap

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/hostjob"
	"github.com/openflynn/flynn/pkg/random"
)

// runApp starts an app's jobs on the local host directly, for the
// components that must run before the scheduler can: discoverd, postgres,
// the controller and the scheduler itself. Its jobs carry the metadata of
// the app and release that add-app (or, with app_step, an earlier
// scale-app) records, so the scheduler adopts them.
type runApp struct {
	stepHead
	AppSpec
	// AppStep runs the app an earlier scale-app step recorded instead of
	// the app described inline.
	AppStep string `json:"app_step,omitempty"`
}

func (a *runApp) run(ctx context.Context, r *run, id string) (string, error) {
	var app *appState
	if a.AppStep != "" {
		app = r.apps[a.AppStep]
		if app == nil {
			return "", fmt.Errorf("app_step %q is no earlier app step", a.AppStep)
		}
	} else {
		var err error
		if app, err = r.newApp(id, a.AppSpec); err != nil {
			return "", err
		}
	}
	ref, err := r.image(app.spec.Image)
	if err != nil {
		return "", err
	}
	art := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: ref}
	for _, typ := range slices.Sorted(maps.Keys(app.spec.Processes)) {
		for range app.spec.Processes[typ] {
			job := hostjob.ForProcess(r.status.ID, app.spec.App.Name, &app.release, art, typ)
			if _, err := r.cfg.Host.AddJob(ctx, job); err != nil {
				return "", fmt.Errorf("start %s job: %w", typ, err)
			}
			app.jobs = append(app.jobs, job.ID)
		}
	}
	return "jobs " + strings.Join(app.jobs, " "), nil
}

// newApp gives an app spec its ids and remembers it under the step id.
func (r *run) newApp(stepID string, spec AppSpec) (*appState, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	app := &appState{spec: spec, appID: random.UUID()}
	app.release = spec.Release
	app.release.ID = random.UUID()
	app.release.AppID = app.appID
	// The controller numbers an app's first release 1; the scheduler's job
	// metadata carries the number.
	app.release.Version = 1
	r.apps[stepID] = app
	r.setValues(stepID, map[string]string{"app_id": app.appID, "release_id": app.release.ID})
	return app, nil
}
