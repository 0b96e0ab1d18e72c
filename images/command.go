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
		},
		Config: func(c *cli.Context, _ *slog.Logger) (BuildConfig, error) {
			return BuildConfig{
				Repo:     c.String("repo"),
				Manifest: c.String("manifest"),
				GoRoot:   c.String("goroot"),
				Only:     cmdline.ListOf(c, "only"),
				Verbose:  c.Bool("verbose"),
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
	mm := &Mmdebstrap{}
	if cfg.Verbose {
		mm.Stderr = os.Stderr
	}
	b := &Builder{Engine: docker, RootFS: mm, Log: logger}
	m, err := b.Build(ctx, defs)
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
