package server

import (
	"fmt"
	"maps"
	"slices"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// checkEnvNames refuses an env with a name no job may have: flynn-host
// would refuse every job given it (host.ValidEnvName is the one rule; the
// schemas hold the same pattern, so this only catches what reaches a
// handler past them).
func checkEnvNames(field string, env map[string]string) error {
	if name, ok := badEnvName(env); ok {
		return httpjson.ValidationError(field, "invalid variable name %q: %s", name, host.EnvNameRule)
	}
	return nil
}

// badEnvName returns the first name of env, in order, that breaks the rule.
func badEnvName(env map[string]string) (string, bool) {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !host.ValidEnvName(k) {
			return k, true
		}
	}
	return "", false
}

// checkReleaseEnv checks the names of a release's env and of its process
// types' envs.
func checkReleaseEnv(env map[string]string, processes map[string]controller.ProcessType) error {
	if err := checkEnvNames("env", env); err != nil {
		return err
	}
	for _, typ := range slices.Sorted(maps.Keys(processes)) {
		if err := checkEnvNames(fmt.Sprintf("processes.%s.env", typ), processes[typ].Env); err != nil {
			return err
		}
	}
	return nil
}
