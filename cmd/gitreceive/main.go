// Command gitreceive is Flynn's git server: `git push` over SSH builds and
// deploys apps (see package gitreceive).
//
//	gitreceive [--ssh-addr :2222] [--state-dir DIR] [--controller URL] [--controller-key KEY]
//	           [--blobstore URL] [--slugbuilder-image REF] [--slugrunner-image REF]
//	gitreceive hook     (the pre-receive hook git runs; not for people)
//
// Flags default from the environment: $SSH_ADDR (or ":$PORT"), $STATE_DIR,
// $CONTROLLER_URL, $CONTROLLER_KEY (or $FLYNN_AUTH_KEY), $BLOBSTORE_URL,
// $BLOBSTORE_KEY, $SLUGBUILDER_IMAGE, $SLUGRUNNER_IMAGE, $BUILDER_APP and
// $SSH_PRIVATE_KEY (the host key as PEM; default: generated in the state dir).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/openflynn/flynn/gitreceive"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "hook" {
		os.Exit(gitreceive.RunHook(os.Stdin, os.Stdout, os.Stderr, os.Getenv))
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := parseConfig(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gitreceive:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := gitreceive.Run(ctx, cfg, logger); err != nil {
		logger.Error("gitreceive stopped", "err", err)
		stop()
		os.Exit(1)
	}
}

func parseConfig(args []string) (gitreceive.Config, error) {
	fs := flag.NewFlagSet("gitreceive", flag.ContinueOnError)
	var cfg gitreceive.Config
	addr := envOr("SSH_ADDR", ":2222")
	if port := os.Getenv("PORT"); port != "" && os.Getenv("SSH_ADDR") == "" {
		addr = ":" + port
	}
	fs.StringVar(&cfg.SSHAddr, "ssh-addr", addr, "SSH listen address ($SSH_ADDR or :$PORT)")
	fs.StringVar(&cfg.StateDir, "state-dir", envOr("STATE_DIR", "/var/lib/gitreceive"), "repositories, host key and hook socket ($STATE_DIR)")
	fs.StringVar(&cfg.ControllerURL, "controller", os.Getenv("CONTROLLER_URL"), "controller URL ($CONTROLLER_URL)")
	fs.StringVar(&cfg.ControllerKey, "controller-key", envOr("CONTROLLER_KEY", os.Getenv("FLYNN_AUTH_KEY")), "controller key ($CONTROLLER_KEY or $FLYNN_AUTH_KEY)")
	fs.StringVar(&cfg.BlobstoreURL, "blobstore", envOr("BLOBSTORE_URL", "http://blobstore.discoverd"), "blobstore URL ($BLOBSTORE_URL)")
	fs.StringVar(&cfg.BlobstoreKey, "blobstore-key", os.Getenv("BLOBSTORE_KEY"), "blobstore upload key ($BLOBSTORE_KEY; default the controller key)")
	fs.StringVar(&cfg.SlugbuilderImage, "slugbuilder-image", os.Getenv("SLUGBUILDER_IMAGE"), "slugbuilder image reference ($SLUGBUILDER_IMAGE)")
	fs.StringVar(&cfg.SlugrunnerImage, "slugrunner-image", os.Getenv("SLUGRUNNER_IMAGE"), "slugrunner image reference ($SLUGRUNNER_IMAGE)")
	fs.StringVar(&cfg.BuilderApp, "builder-app", envOr("BUILDER_APP", "slugbuilder"), "app build jobs run under ($BUILDER_APP)")
	fs.Int64Var(&cfg.BuildMemory, "build-memory", gitreceive.DefaultBuildMemory, "a build job's memory limit in bytes")
	fs.DurationVar(&cfg.DeployTimeout, "deploy-timeout", 5*time.Minute, "how long a push waits for its deployment")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if k := os.Getenv("SSH_PRIVATE_KEY"); k != "" {
		cfg.HostKeyPEM = []byte(k)
	}
	return cfg, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
