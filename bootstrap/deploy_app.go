package bootstrap

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// deployApp (actions deploy-app and scale-app) records an app in the
// controller with its formation, so the scheduler runs it. scale-app is
// the same for an app whose first job bootstrap then starts itself with
// run-app's app_step: the scheduler, which cannot start itself.
type deployApp struct {
	stepHead
	AppSpec
}

func (a *deployApp) run(ctx context.Context, r *run, id string) (string, error) {
	app, err := r.newApp(id, a.AppSpec)
	if err != nil {
		return "", err
	}
	if err := r.record(ctx, app); err != nil {
		return "", err
	}
	var procs []string
	for _, typ := range slices.Sorted(maps.Keys(a.Processes)) {
		procs = append(procs, fmt.Sprintf("%s=%d", typ, a.Processes[typ]))
	}
	return "app " + a.App.Name + " " + strings.Join(procs, " "), nil
}
