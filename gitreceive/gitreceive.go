// Package gitreceive is Flynn's git server: `git push flynn main` over SSH
// builds the pushed tree with slugbuilder and deploys it.
//
//	ssh client ──key──► controller GET /keys?fingerprint= (unknown: refused)
//	git-receive-pack '<app>.git' ──► app must exist ──► per-app lock
//	git receive-pack <state>/repos/<app id>.git   (the real binary)
//	  └─ pre-receive hook = `gitreceive hook` ──unix socket──► this process
//	        git archive <sha> ──stdin──► slugbuilder job (controller one-off
//	        job API, attached) ──output, line by line──► hook stdout ──►
//	        git's sideband ──► "remote: -----> …" on the client
//	        artifact (slugrunner) + release (SLUG_URL, process types) ──► deploy
//	        exit 0: refs updated · exit 1: push rejected, release untouched
//
// # Why a pre-receive hook that calls back
//
// Output written after git-receive-pack exits never reaches the client, and
// only a hook's output is relayed over git's sideband while the push is
// still open. Running the build in a pre-receive hook also gives the right
// failure semantics for free: a failed build rejects the push, so the
// branch in the cached repository stays where the running release is and
// the next push starts from there. The hook itself is a thin relay (the
// same binary run as `gitreceive hook`): it passes the ref updates and git's
// quarantine variables to this process over a unix socket, with a per-push
// token, and prints what comes back. The build thus runs here, with the
// configuration and credentials never written into repositories, under
// the SSH session's context (a client that disconnects cancels its build,
// which stops the build job), and inside the per-app lock that serialises
// pushes to one app.
//
// Only pushes to main or master deploy; other branches and tags are stored
// in the app's repository (so later pushes stay incremental) and said so.
// Non-fast-forward pushes are refused by the git client unless forced; the
// server accepts forced pushes, as Heroku does. `git fetch`/`clone` of an
// app (git-upload-pack) returns what was last pushed successfully.
//
// # Build jobs
//
// The controller runs one-off jobs from an app's release, and a build must
// not add releases to the pushed app, so build jobs run as one-off jobs of
// a builder app (Config.BuilderApp, created on first use) whose release
// runs the slugbuilder image. The pushed app's config vars go to the job
// as env, with SLUG_PUT_URL, CACHE_URL and SOURCE_VERSION (see package
// slugbuilder); its metadata names the pushed app and commit.
package gitreceive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// DefaultBuildMemory is a build job's memory limit when the Config names
// none: enough for npm and the Go toolchain, bounded so that one build
// cannot starve the host's apps.
const DefaultBuildMemory = 2 << 30

// DefaultDeployTimeout bounds a push's wait for its deployment when the
// Config names no bound.
const DefaultDeployTimeout = 5 * time.Minute

// BuildProcessType is the builder app's process type that build jobs take
// their settings (the memory limit) from.
const BuildProcessType = "build"

// Config configures a gitreceive server.
type Config struct {
	// SSHAddr is the SSH listen address; default ":2222".
	SSHAddr string
	// StateDir holds the app repositories, the generated host key and the
	// hook socket (required). Keep it on a volume: repositories make pushes
	// incremental.
	StateDir string
	// HostKeyPEM is the SSH host key (a PEM private key). Empty: the key in
	// StateDir/ssh_host_ed25519_key, generated on first start.
	HostKeyPEM []byte

	// ControllerURL and ControllerKey reach the controller (required URL).
	ControllerURL string
	ControllerKey string
	// BlobstoreURL is the blobstore's base URL ("http://blobstore.discoverd")
	// (required). Slugs go to /apps/<app id>/slug-<uuid>.tgz, the build
	// cache to /apps/<app id>/cache.tgz.
	BlobstoreURL string
	// BlobstoreKey authorises uploads (basic-auth password); default
	// ControllerKey.
	BlobstoreKey string
	// SlugbuilderImage and SlugrunnerImage are Docker image references on
	// the hosts (required).
	SlugbuilderImage string
	SlugrunnerImage  string
	// BuilderApp is the app build jobs run under; default "slugbuilder".
	BuilderApp string
	// BuildMemory is a build job's memory limit in bytes; default
	// DefaultBuildMemory.
	BuildMemory int64

	// HookCommand is the pre-receive hook's command line; default this
	// executable with the argument "hook". The hook finds this server
	// through its environment.
	HookCommand []string
	// GitPath is the git binary; default "git" from PATH.
	GitPath string
	// DeployTimeout bounds the wait for a deployment; default 5 minutes.
	DeployTimeout time.Duration
}

func (c *Config) setDefaults() error {
	if c.SSHAddr == "" {
		c.SSHAddr = ":2222"
	}
	if c.BlobstoreKey == "" {
		c.BlobstoreKey = c.ControllerKey
	}
	if c.BuildMemory <= 0 {
		c.BuildMemory = DefaultBuildMemory
	}
	if c.BuilderApp == "" {
		c.BuilderApp = "slugbuilder"
	}
	if c.GitPath == "" {
		c.GitPath = "git"
	}
	if c.DeployTimeout <= 0 {
		c.DeployTimeout = DefaultDeployTimeout
	}
	var missing []error
	for name, v := range map[string]string{"state dir": c.StateDir, "controller URL": c.ControllerURL,
		"blobstore URL": c.BlobstoreURL, "slugbuilder image": c.SlugbuilderImage, "slugrunner image": c.SlugrunnerImage} {
		if v == "" {
			missing = append(missing, fmt.Errorf("a %s is required", name))
		}
	}
	return errors.Join(missing...)
}

// Run serves SSH on cfg.SSHAddr until ctx ends.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	s, err := New(cfg, logger)
	if err != nil {
		return err
	}
	addr := cfg.SSHAddr
	if addr == "" {
		addr = ":2222"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("gitreceive: listen: %w", err)
	}
	logger.Info("gitreceive listening", "addr", ln.Addr().String())
	return s.Serve(ctx, ln)
}
