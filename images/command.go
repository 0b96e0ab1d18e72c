package images

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/pkg/cmdline"
)

// BuildConfig is what flynn-images builds, and where the manifest goes.
type BuildConfig struct {
	// Repo is the repository root (holds bin/ and buildpacks/).
	Repo string
	// Manifest is the manifest written; default <Repo>/bin/images.json.
	Manifest string
	// GoRoot is the Go toolchain copied into flynn/build; default `go env
	// GOROOT`.
	GoRoot string
	// Only names the image keys to build (with their parents); empty: all.
	Only []string
	// Verbose shows mmdebstrap's progress.
	Verbose bool
	// Parallel is how many images build at once (Builder.Parallel).
	Parallel int
	// LaterStacks leaves the images of the stacks other than the default
	// out of this run (Builder.Later): they are in the manifest only if
	// they exist already. A later run without it builds them.
	LaterStacks bool
}

// Command is the flynn-images binary (`make images`).
func Command() cmdline.Daemon[BuildConfig] {
	return cmdline.Daemon[BuildConfig]{
		Name:  "flynn-images",
		Usage: "build every image the cluster runs and write the manifest bootstrap reads",
		Flags: []cli.Flag{
			cmdline.String("repo", ".", "repository root (holds bin/ and buildpacks/)"),
			cmdline.String("manifest", "", "manifest to write (default <repo>/bin/images.json)"),
			cmdline.String("goroot", "", "Go toolchain copied into flynn/build (default: `go env GOROOT`)"),
			cmdline.List("only", "image keys to build (with their parents); default all"),
			cmdline.Bool("verbose", false, "show mmdebstrap's progress", cmdline.Was("-v")),
			cmdline.Int("parallel", DefaultParallel, "how many images build at once (each as soon as its parent is built)"),
			cmdline.Bool("later-stacks", false, "build only the default stack's images and the components; the other stacks' images are in the manifest if they exist already (a run without it builds them)"),
		},
		Config: func(c *cli.Context, _ *slog.Logger) (BuildConfig, error) {
			return BuildConfig{
				Repo:        c.String("repo"),
				Manifest:    c.String("manifest"),
				GoRoot:      c.String("goroot"),
				Only:        cmdline.ListOf(c, "only"),
				Verbose:     c.Bool("verbose"),
				Parallel:    c.Int("parallel"),
				LaterStacks: c.Bool("later-stacks"),
			}, nil
		},
		Run: BuildAll,
	}
}

// BuildAll builds the images cfg names and writes their manifest; a
// partial build (Only) updates its entries of the existing manifest.
func BuildAll(ctx context.Context, cfg BuildConfig, logger *slog.Logger) error {
	start := time.Now()
	if cfg.GoRoot == "" {
		out, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
		if err != nil {
			return fmt.Errorf("find the Go toolchain (pass --goroot): %w", err)
		}
		cfg.GoRoot = strings.TrimSpace(string(out))
	}
	if cfg.Manifest == "" {
		cfg.Manifest = filepath.Join(cfg.Repo, "bin", "images.json")
	}
	defs := Flynn(Sources{Repo: cfg.Repo, GoRoot: cfg.GoRoot})
	if len(cfg.Only) > 0 {
		defs = Select(defs, cfg.Only)
	}
	docker, err := NewDocker()
	if err != nil {
		return err
	}
	defer docker.Close()
	mm := &Mmdebstrap{CacheDir: DefaultCacheDir}
	if cfg.Verbose {
		mm.Stderr = os.Stderr
	}
	// The times of this machine's last builds are the estimates of this
	// one's progress lines.
	timesPath := filepath.Join(filepath.Dir(cfg.Manifest), "image-build-times.json")
	times, err := ReadBuildTimes(timesPath)
	if err != nil {
		logger.Warn("no estimates from the last build", "err", err)
		times = BuildTimes{}
	}
	b := &Builder{Engine: docker, RootFS: mm, Log: logger, Parallel: cfg.Parallel, Estimates: times}
	if cfg.LaterStacks {
		b.Later = OtherStackKeys(defs)
	}
	m, err := b.Build(ctx, defs)
	if werr := writeBuildTimes(timesPath, times); werr != nil {
		logger.Warn("could not keep the build times", "err", werr)
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Manifest), 0o755); err != nil {
		return err
	}
	if len(cfg.Only) > 0 {
		if old, err := ReadManifest(cfg.Manifest); err == nil {
			for k, v := range m {
				old[k] = v
			}
			m = old
		}
	}
	if err := m.WriteFile(cfg.Manifest); err != nil {
		return err
	}
	logger.Info("images ready", "manifest", cfg.Manifest, "images", len(m), "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// writeBuildTimes keeps times at path, creating its directory.
func writeBuildTimes(path string, times BuildTimes) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return times.WriteFile(path)
}
