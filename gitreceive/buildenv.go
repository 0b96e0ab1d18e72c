package gitreceive

import (
	"context"
	"maps"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// clusterBuildEnv returns the cluster's build settings (controller.BuildEnv)
// as variables: its Env, and its CACerts as controller.CACertsEnv. They are
// read for every build, so that an operator's change applies to the next
// push. A controller from before build settings (404) gives none.
//
// The controller adds them to the jobs of apps that are not system apps
// itself; a build job is one of the builder app, a system app, so
// gitreceive adds them for the app it builds.
func (b *builder) clusterBuildEnv(ctx context.Context) (map[string]string, error) {
	be, err := b.c.BuildEnv(ctx)
	if httpjson.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	env := maps.Clone(be.Env)
	if be.CACerts != "" {
		if env == nil {
			env = map[string]string{}
		}
		env[controller.CACertsEnv] = be.CACerts
	}
	return env, nil
}

// buildEnv is the env a build job gets before the build's own variables,
// in layers where a later one wins name by name: the cluster's build
// settings, the app's config vars (those of prev, its current release),
// and what app.json gives a new app. The release's SLUG_URL, which names
// the previous slug, is not for the build.
func buildEnv(cluster map[string]string, prev *controller.Release, appJSON map[string]string) map[string]string {
	env := map[string]string{}
	maps.Copy(env, cluster)
	if prev != nil {
		maps.Copy(env, prev.Env)
	}
	maps.Copy(env, appJSON)
	delete(env, "SLUG_URL")
	return env
}
