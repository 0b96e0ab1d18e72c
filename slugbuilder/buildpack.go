package slugbuilder

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// buildpack is a directory that implements the buildpack API.
type buildpack struct {
	// Name is what detect printed (or the directory's name).
	Name string
	// Dir holds bin/detect, bin/compile and bin/release.
	Dir string
	// named is true for a buildpack named in .buildpacks or by
	// BUILDPACK_URL rather than detected: detect, run just before it
	// compiles, only names it.
	named bool
}

// command runs one of the buildpack's scripts in its own process group, so
// that a cancelled build kills everything the script started.
func (bp buildpack) command(ctx context.Context, cfg Config, env []string, script string, args ...string) *exec.Cmd {
	return groupCommand(ctx, cfg, env, filepath.Join(bp.Dir, "bin", script), args...)
}

// groupCommand runs name in the build directory in its own process group,
// killed whole when ctx ends.
func groupCommand(ctx context.Context, cfg Config, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = cfg.BuildDir
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Output pipes held open by a left-over grandchild must not hang the build.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// detect reports whether bp can build the app, and fills in its name. A
// buildpack without bin/detect (allowed for a named one) says no.
func (bp *buildpack) detect(ctx context.Context, cfg Config, env []string) (bool, error) {
	if _, err := os.Stat(filepath.Join(bp.Dir, "bin", "detect")); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	var out bytes.Buffer
	cmd := bp.command(ctx, cfg, env, "detect", cfg.BuildDir)
	cmd.Stdout = &out
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && ctx.Err() == nil {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("buildpack %s: detect: %w", filepath.Base(bp.Dir), err)
	}
	if name := strings.TrimSpace(out.String()); name != "" {
		bp.Name = strings.SplitN(name, "\n", 2)[0]
	}
	return true, nil
}

func (bp buildpack) compile(ctx context.Context, cfg Config, env []string) error {
	cmd := bp.command(ctx, cfg, cfg.compileEnv(env), "compile", cfg.BuildDir, cfg.CacheDir, cfg.EnvDir)
	cmd.Stdout, cmd.Stderr = cfg.Stdout, cfg.Stdout
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("build cancelled: %w", ctx.Err())
		}
		return fmt.Errorf("%s buildpack failed to compile the app: %w", bp.Name, err)
	}
	return nil
}

// compileEnv is env with the directories of the buildpack API, which
// compile receives as arguments too.
func (cfg Config) compileEnv(env []string) []string {
	return append(unsetEnv(env, "BUILD_DIR", "CACHE_DIR", "ENV_DIR"), "BUILD_DIR="+cfg.BuildDir, "CACHE_DIR="+cfg.CacheDir, "ENV_DIR="+cfg.EnvDir)
}

func (bp buildpack) release(ctx context.Context, cfg Config, env []string) (map[string]string, error) {
	if _, err := os.Stat(filepath.Join(bp.Dir, "bin", "release")); errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	var out bytes.Buffer
	cmd := bp.command(ctx, cfg, env, "release", cfg.BuildDir)
	cmd.Stdout, cmd.Stderr = &out, cfg.Stdout
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s buildpack: release: %w", bp.Name, err)
	}
	types, err := ParseRelease(&out)
	if err != nil {
		return nil, fmt.Errorf("%s buildpack: %w", bp.Name, err)
	}
	return types, nil
}

// selectBuildpacks returns the buildpacks that compile the app: the one
// BUILDPACK_URL names, those of a .buildpacks file, or the first bundled one
// whose detect matches. When none matches and the app has a Dockerfile,
// it returns no buildpack and dockerfile true: the app is built from that.
func selectBuildpacks(ctx context.Context, cfg Config, logger *slog.Logger) (packs []*buildpack, dockerfile bool, err error) {
	env := cfg.buildpackEnv()
	if cfg.BuildpackURL != "" {
		bp, err := namedBuildpack(ctx, cfg, 0, cfg.BuildpackURL, logger)
		if err != nil {
			return nil, false, err
		}
		return []*buildpack{bp}, false, nil
	}
	if list, err := os.ReadFile(filepath.Join(cfg.BuildDir, ".buildpacks")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(list))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			bp, err := namedBuildpack(ctx, cfg, len(packs), line, logger)
			if err != nil {
				return nil, false, err
			}
			packs = append(packs, bp)
		}
		if len(packs) == 0 {
			return nil, false, errors.New(".buildpacks lists no buildpack")
		}
		step(cfg.Stdout, fmt.Sprintf("Multiple buildpacks from .buildpacks: %d", len(packs)))
		return packs, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	bundled, err := bundledBuildpacks(cfg.BuildpacksDir)
	if err != nil {
		return nil, false, err
	}
	for _, bp := range bundled {
		ok, err := bp.detect(ctx, cfg, env)
		if err != nil {
			return nil, false, err
		}
		if ok {
			return []*buildpack{bp}, false, nil
		}
	}
	// Only a regular file: a symlink could point anywhere on the build
	// host's side of a docker build, and a directory is no Dockerfile.
	if fi, err := os.Lstat(filepath.Join(cfg.BuildDir, "Dockerfile")); err == nil && fi.Mode().IsRegular() {
		return nil, true, nil
	}
	return nil, false, errors.New("no buildpack can build this app: add a Procfile, or a package.json, go.mod, requirements.txt or index.html, or set BUILDPACK_URL; or add a Dockerfile to build the app from it")
}

// namedBuildpack returns the buildpack a URL, a bundled buildpack's name or
// a local directory names; Build runs its detect, for its name only.
func namedBuildpack(ctx context.Context, cfg Config, n int, ref string, logger *slog.Logger) (*buildpack, error) {
	var dir string
	switch {
	case strings.Contains(ref, "://") || strings.HasPrefix(ref, "git@"):
		dir = filepath.Join(cfg.FetchDir, fmt.Sprint(n))
		step(cfg.Stdout, "Fetching custom buildpack "+redact(ref))
		if err := fetchBuildpack(ctx, cfg, ref, dir); err != nil {
			return nil, err
		}
		logger.Debug("buildpack fetched", "url", redact(ref))
	case filepath.IsAbs(ref):
		dir = ref
	default:
		dir = filepath.Join(cfg.BuildpacksDir, ref)
	}
	if _, err := os.Stat(filepath.Join(dir, "bin", "compile")); err != nil {
		return nil, fmt.Errorf("buildpack %s has no bin/compile: %w", redact(ref), err)
	}
	return &buildpack{Name: filepath.Base(strings.TrimSuffix(ref, ".git")), Dir: dir, named: true}, nil
}

// bundledBuildpacks lists dir's buildpacks in detection order: the names in
// dir/order first, then the other directories by name.
func bundledBuildpacks(dir string) ([]*buildpack, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("bundled buildpacks: %w", err)
	}
	var names []string
	if data, err := os.ReadFile(filepath.Join(dir, "order")); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				names = append(names, line)
			}
		}
	}
	for _, e := range entries {
		if e.IsDir() && !slices.Contains(names, e.Name()) {
			names = append(names, e.Name())
		}
	}
	var packs []*buildpack
	for _, name := range names {
		d := filepath.Join(dir, name)
		if _, err := os.Stat(filepath.Join(d, "bin", "detect")); err != nil {
			continue
		}
		packs = append(packs, &buildpack{Name: name, Dir: d})
	}
	return packs, nil
}

// redact hides a URL's password.
func redact(ref string) string {
	scheme, rest, ok := strings.Cut(ref, "://")
	if !ok {
		return ref
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok || strings.Contains(userinfo, "/") {
		return ref
	}
	user, _, _ := strings.Cut(userinfo, ":")
	return scheme + "://" + user + ":xxxxx@" + host
}
