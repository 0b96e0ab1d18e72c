package client

import (
	"context"
	"net/http"

	"github.com/openflynn/flynn/controller"
)

// buildEnvPath is the cluster's build settings.
const buildEnvPath = "/cluster/build-env"

// BuildEnv returns the cluster's build settings, which every build and job
// of an app that is not a system app gets under its own env. A controller
// older than them answers not_found (httpjson.IsNotFound).
func (c *Client) BuildEnv(ctx context.Context) (*controller.BuildEnv, error) {
	var be controller.BuildEnv
	return &be, c.do(ctx, http.MethodGet, buildEnvPath, nil, &be)
}

// PatchBuildEnv changes the cluster's build settings as p says and returns
// them. Only the cluster key may (forbidden for an API key). Jobs running
// keep the settings they started with; the next ones get the change.
func (c *Client) PatchBuildEnv(ctx context.Context, p controller.BuildEnvPatch) (*controller.BuildEnv, error) {
	var be controller.BuildEnv
	return &be, c.do(ctx, http.MethodPatch, buildEnvPath, p, &be)
}
