package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
)

// Patch makes a new release from the current release of an app (id or
// name) changed by p, and deploys it as Deploy does. The app's row is
// locked from the read of its current release to the commit, so the new
// release starts from the release current at that moment: a patch never
// undoes a change committed while its caller was busy (an `env unset`
// during a push's build). A patch that changes nothing creates nothing and
// returns the current release (nil when the app has none) with no
// deployment. With p.NoDeploy the new release is made, always, and not
// deployed.
func (r *ReleaseRepo) Patch(ctx context.Context, appIDOrName string, p controller.ReleasePatch) (*controller.Release, *controller.Deployment, error) {
	var (
		rel *controller.Release
		d   *controller.Deployment
	)
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		app, err := getApp(ctx, tx, appIDOrName, true)
		if err != nil {
			return err
		}
		var changes []change
		if rel, d, changes, err = patchRelease(ctx, tx, app, p); err != nil {
			return err
		}
		return emit(ctx, tx, changes...)
	})
	return rel, d, err
}

// patchRelease does Patch's work inside tx, where the caller holds app's
// row lock, and returns the events to emit.
func patchRelease(ctx context.Context, tx pgx.Tx, app *controller.App, p controller.ReleasePatch) (*controller.Release, *controller.Deployment, []change, error) {
	var current *controller.Release
	base := &controller.Release{}
	if app.ReleaseID != "" {
		var err error
		if current, err = getRelease(ctx, tx, app.ReleaseID); err != nil {
			return nil, nil, nil, err
		}
		base = current
	}
	next := &controller.Release{
		AppID:      app.ID,
		ArtifactID: base.ArtifactID,
		Env:        maps.Clone(base.Env),
		Processes:  base.Processes,
		Meta:       base.Meta,
	}
	if p.ArtifactID != "" {
		next.ArtifactID = p.ArtifactID
	}
	if p.Processes != nil {
		next.Processes = p.Processes
	}
	if p.Meta != nil {
		next.Meta = p.Meta
	}
	// Who made the release before did not make this one.
	next.Meta = controller.WithCreator(next.Meta, p.CreatedBy)
	if next.Env == nil {
		next.Env = map[string]string{}
	}
	if p.Env != nil {
		for i, k := range p.Env.Unset {
			if _, set := p.Env.Set[k]; set {
				return nil, nil, nil, invalid(fmt.Sprintf("env.unset.%d", i), "%s is both set and unset", k)
			}
			delete(next.Env, k)
		}
		maps.Copy(next.Env, p.Env.Set)
	}
	if err := checkEnvNames(next.Env, p.Env); err != nil {
		return nil, nil, nil, err
	}
	// A NoDeploy caller deploys the release itself, so it always gets a
	// new one to deploy.
	if !p.NoDeploy && sameRelease(next, base) {
		return current, nil, nil, nil
	}
	if err := createRelease(ctx, tx, next); err != nil {
		return nil, nil, nil, err
	}
	created := change{app.ID, controller.ObjectTypeRelease, next.ID, controller.OpCreate, next}
	if p.NoDeploy {
		return next, nil, []change{created}, nil
	}
	_, d, deployChanges, err := deploy(ctx, tx, app, next.ID)
	if err != nil {
		return nil, nil, nil, err
	}
	return next, d, append([]change{created}, deployChanges...), nil
}

// checkEnvNames refuses an env that holds a name no job may have
// (host.ValidEnvName): its host would refuse every job of the release. A
// name the patch sets is the caller's mistake; one carried over from the
// current release (stored before the rule was enforced) must be unset
// first.
func checkEnvNames(env map[string]string, p *controller.EnvPatch) error {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if host.ValidEnvName(k) {
			continue
		}
		if p != nil {
			if _, set := p.Set[k]; set {
				return invalid("env.set", "invalid variable name %q: %s", k, host.EnvNameRule)
			}
		}
		return invalid("env", "the current release has the variable %q, which no job may have (%s): unset it first", k, host.EnvNameRule)
	}
	return nil
}

// sameRelease reports whether a and b have the same artifact, env,
// process types and meta; an empty map is the same as none. Who made them
// does not count: a change that changes nothing makes no release, whoever
// asks.
func sameRelease(a, b *controller.Release) bool {
	return a.ArtifactID == b.ArtifactID && maps.Equal(a.Env, b.Env) &&
		maps.Equal(controller.WithCreator(a.Meta, ""), controller.WithCreator(b.Meta, "")) && sameJSON(a.Processes, b.Processes)
}

// sameJSON compares process types by their JSON, as they are stored: a
// nil and an empty slice of a field are both left out of it.
func sameJSON(a, b map[string]controller.ProcessType) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
