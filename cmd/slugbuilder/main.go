// Command slugbuilder is the entrypoint of the flynn/slugbuilder image: it
// reads the app's tar on stdin and builds a slug; see package slugbuilder
// for the job's contract. With --no-stdin it builds what the build directory
// (SLUGBUILDER_BUILD_DIR, default /app) already holds.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/openflynn/flynn/pkg/cabundle"
	"github.com/openflynn/flynn/slugbuilder"
)

// jobVars are the job's own variables: never config vars of the app, and
// the secret ones are not passed to buildpacks either.
var jobVars = map[string]bool{
	"PATH": true, "HOME": true, "HOSTNAME": true, "PWD": true, "OLDPWD": true, "SHLVL": true, "TERM": true, "_": true,
	"SLUG_PUT_URL": true, "CACHE_URL": true, "CACHE_PUT_URL": true, "SOURCE_VERSION": true, "PORT": true,
}

// secretVars are kept from the buildpacks: they are signed blobstore URLs.
var secretVars = map[string]bool{"SLUG_PUT_URL": true, "CACHE_URL": true, "CACHE_PUT_URL": true}

func main() {
	// The build's output goes to the person pushing, as buildpack-style
	// lines; slugbuilder's own diagnostics only with SLUGBUILDER_DEBUG.
	level := slog.LevelWarn
	if os.Getenv("SLUGBUILDER_DEBUG") != "" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("component", "slugbuilder")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()

	appEnv := map[string]string{}
	var buildEnv []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		// The cluster's extra CA certificates are public: buildpacks see
		// them as well as the bundle slugbuilder makes of them.
		if !secretVars[k] && (!strings.HasPrefix(k, "FLYNN_") || k == cabundle.EnvVar) {
			buildEnv = append(buildEnv, kv)
		}
		if !jobVars[k] && !strings.HasPrefix(k, "FLYNN_") && !strings.HasPrefix(k, "SLUG_") {
			appEnv[k] = v
		}
	}
	cfg := slugbuilder.Config{
		BuildDir:      os.Getenv("SLUGBUILDER_BUILD_DIR"),
		BuildpackURL:  os.Getenv("BUILDPACK_URL"),
		SourceVersion: os.Getenv("SOURCE_VERSION"),
		AppEnv:        appEnv,
		Env:           buildEnv,
		Stack:         os.Getenv("STACK"),
		SlugPutURL:    os.Getenv("SLUG_PUT_URL"),
		CacheURL:      os.Getenv("CACHE_URL"),
		CachePutURL:   os.Getenv("CACHE_PUT_URL"),
	}
	var source io.Reader = os.Stdin
	if len(os.Args) > 1 && os.Args[1] == "--no-stdin" {
		source = nil // build what SLUGBUILDER_BUILD_DIR already holds
	}
	if _, err := slugbuilder.Run(ctx, cfg, source, logger); err != nil {
		fmt.Fprintf(os.Stdout, " !     %v\n", err)
		stop()
		os.Exit(1)
	}
}
