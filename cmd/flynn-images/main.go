// Command flynn-images builds every image the cluster runs (`make images`)
// and writes the manifest bootstrap reads (default bin/images.json).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/openflynn/flynn/images"
)

func main() {
	repo := flag.String("repo", ".", "repository root (holds bin/ and buildpacks/)")
	manifest := flag.String("manifest", "", "manifest to write (default <repo>/bin/images.json)")
	goRoot := flag.String("goroot", "", "Go toolchain copied into flynn/build (default: `go env GOROOT`)")
	only := flag.String("only", "", "comma-separated image keys to build (with their parents); default all")
	verbose := flag.Bool("v", false, "show mmdebstrap's progress")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, logger, *repo, *manifest, *goRoot, *only, *verbose); err != nil {
		logger.Error("make images failed", "err", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger, repo, manifest, goRoot, only string, verbose bool) error {
	start := time.Now()
	if goRoot == "" {
		out, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
		if err != nil {
			return fmt.Errorf("find the Go toolchain (pass -goroot): %w", err)
		}
		goRoot = strings.TrimSpace(string(out))
	}
	if manifest == "" {
		manifest = filepath.Join(repo, "bin", "images.json")
	}
	defs := images.Flynn(images.Sources{Repo: repo, GoRoot: goRoot})
	if only != "" {
		defs = images.Select(defs, strings.Split(only, ","))
	}
	docker, err := images.NewDocker()
	if err != nil {
		return err
	}
	defer docker.Close()
	mm := &images.Mmdebstrap{}
	if verbose {
		mm.Stderr = os.Stderr
	}
	b := &images.Builder{Engine: docker, RootFS: mm, Log: logger}
	m, err := b.Build(ctx, defs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(manifest), 0o755); err != nil {
		return err
	}
	if only != "" {
		// A partial build updates its entries of the existing manifest.
		if old, err := images.ReadManifest(manifest); err == nil {
			for k, v := range m {
				old[k] = v
			}
			m = old
		}
	}
	if err := m.WriteFile(manifest); err != nil {
		return err
	}
	logger.Info("images ready", "manifest", manifest, "images", len(m), "duration", time.Since(start).Round(time.Millisecond))
	return nil
}
