package slugbuilder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// exportScript sources a buildpack's export file (its output goes to the
// build's, not into the environment) and prints the environment that
// results, NUL-separated: bash reads the file, whatever its syntax, and Go
// only compares two environments.
const exportScript = `source "$1" >&2 || exit
exec env -0`

// shellVars are variables bash sets by itself: not the export's doing.
var shellVars = map[string]bool{"_": true, "SHLVL": true, "PWD": true, "OLDPWD": true}

// sourceExport carries out Heroku's multi-buildpack convention: a
// buildpack's compile may write an `export` file at the top of its
// directory, lines like `export NAME=value`, for the buildpacks after it.
// It returns env with what sourcing the file set, changed or unset.
func (bp buildpack) sourceExport(ctx context.Context, cfg Config, env []string) ([]string, error) {
	file := filepath.Join(bp.Dir, "export")
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return env, nil
	}
	// The file may use what compile had, BUILD_DIR and the like.
	shellEnv := cfg.compileEnv(env)
	var out bytes.Buffer
	cmd := groupCommand(ctx, cfg, shellEnv, "bash", "-c", exportScript, "export", file)
	cmd.Stdout, cmd.Stderr = &out, cfg.Stdout
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("build cancelled: %w", ctx.Err())
		}
		return nil, fmt.Errorf("%s buildpack: its export file (%s) failed: %w", bp.Name, file, err)
	}
	before := envMap(shellEnv)
	after := envMap(strings.Split(strings.TrimSuffix(out.String(), "\x00"), "\x00"))
	var changed, unset []string
	for k, v := range after {
		if old, ok := before[k]; (!ok || old != v) && !shellVars[k] {
			changed = append(changed, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok && !shellVars[k] {
			unset = append(unset, k)
		}
	}
	if len(changed)+len(unset) == 0 {
		return env, nil
	}
	slices.Sort(changed)
	next := unsetEnv(env, append(slices.Clone(changed), unset...)...)
	for _, k := range changed {
		next = append(next, k+"="+after[k])
	}
	// Names only: a value may be a credential.
	detail(cfg.Stdout, fmt.Sprintf("%s exports %s to the buildpacks after it", bp.Name, strings.Join(slices.Sorted(slices.Values(append(changed, unset...))), ", ")))
	return next, nil
}

// envMap is env as a map; the last of a repeated name wins, as in exec.Cmd.
func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// unsetEnv returns env without the given names.
func unsetEnv(env []string, names ...string) []string {
	drop := map[string]bool{}
	for _, name := range names {
		drop[name] = true
	}
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			out = append(out, kv)
		}
	}
	return out
}
