// Package gitreceive is Flynn's git server: `git push flynn main` over SSH
// builds the pushed tree with slugbuilder and deploys it.
//
//	ssh client ──key──► controller GET /keys?fingerprint= (unknown: refused)
//	git-receive-pack '<app>.git' ──► app must exist ──► per-app lock
//	git receive-pack <state>/repos/<app id>.git   (the real binary)
//	  └─ pre-receive hook = `gitreceive hook` ──unix socket──► this process
//	        [first deploy] app.json ──► env defaults, generated secrets
//	        git archive <sha> ──stdin──► slugbuilder job (controller one-off
//	        job API, attached; env: cluster build env < app env) ──output,
//	        line by line──► hook stdout ──► git's sideband ──► "remote:
//	        -----> …" on the client
//	        artifact (slugrunner) + release (SLUG_URL, process types)
//	        [no buildpack, a Dockerfile] git archive <sha> ──► controller
//	          POST /apps/:id/images/build ──lines──► client; image artifact
//	          + release (controller.ImageProcesses of the Procfile)
//	          ├─ no release type: patched and deployed at once
//	          └─ release type: patched, not deployed ──► `start release`
//	             one-off job ──exit 0──► deploy (no env change undone)
//	        deployment followed ──► "=====> Application deployed", the URL
//	        [first deploy] app.json's postdeploy script, one-off job
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
// as env, with SLUG_PUT_URL, CACHE_URL, CACHE_PUT_URL and SOURCE_VERSION
// (see package slugbuilder); its metadata names the pushed app and commit.
//
// The build job also gets the cluster's build settings
// (controller.BuildEnv, `flynn cluster build-env`: package mirrors, CA
// certificates as controller.CACertsEnv) under the app's own env, the
// app's value winning name by name. They are read for every push, so an
// operator's change applies to the next one; a controller from before
// them (404) builds without.
//
// # Release phase
//
// A Procfile entry `release: CMD` is Heroku's release phase: the push
// makes its release without deploying it (controller.ReleasePatch
// NoDeploy), runs `start release` as a one-off job of it (the app's env,
// the limits of the app's one-off jobs, at most ReleaseTimeout), passing
// its output on, and deploys the release only when the command exits 0.
// Otherwise the push fails and the app keeps serving the release it had.
// `release` is not one of the release's process types, so it is never
// scaled. An `env set` made while the command runs would be undone by
// deploying the push's release: the push makes the release again from the
// new env and runs the command again (up to maxReleaseAttempts times), and
// a change that lands just as the release is deployed is made again on
// top of it.
//
// # Dockerfile apps
//
// When the build job reports that no buildpack matches but the tree has a
// Dockerfile (slugbuilder.DockerfileLine), the push, still in its build
// slot and within BuildTimeout, streams `git archive` of the commit to the
// controller's image build (client.BuildImage: a host runs `docker
// build`), passing its output on indented like a buildpack's, and
// releases the image's docker-archive artifact: process types from
// controller.ImageProcesses of the commit's Procfile (none: the image's
// command as web, on its first exposed port), the app's env without
// SLUG_URL. A Procfile `release:` type is the release phase as above, run
// as `/bin/sh -c CMD` in the image; app.json's postdeploy likewise. No
// build arg is passed: the cluster's build env and the app's config vars
// may hold credentials, and an ARG's value stays in the image. A failed
// build fails the push with the build's message and deploys nothing.
//
// # app.json
//
// On an app's first deploy (its current release has no artifact: it has
// never run code), the pushed commit's app.json (Heroku's manifest, at
// most 1 MiB) gives the app the variables of its "env" that it lacks: a
// value, or 32 random bytes in hex for "generator": "secret". A required
// variable (Heroku's default) with no value that the app lacks fails the
// push before the build, saying how to set it. The variables reach the
// build and the release. After the deploy, "scripts.postdeploy" runs once
// as a one-off job of the release; its failure fails the push but leaves
// the deploy. Later pushes ignore app.json, as Heroku does after app
// creation, and the fields that would change the app in other ways
// (addons, formation, buildpacks, …) are named as ignored.
//
// A push that deployed ends with the app's URL: that of its first HTTP
// route (the one the controller makes with the app), https when the route
// has a certificate.
//
// # Credentials
//
// Neither build jobs nor app jobs get the blobstore key. They get signed
// URLs (blobstore/signed), each good for one method on one path: the build
// job a single-use PUT of its own slug path and of the app's cache, and a
// GET of the cache, all expiring BuildTimeout plus uploadMargin after the
// build starts; the release a GET of its slug (SLUG_URL) that expires
// after SlugURLLifetime, since slugrunner fetches it at every job start for
// as long as the release may run or be rolled back to.
//
// # Bounds
//
// A build runs at most BuildTimeout, with the memory, process and disk
// limits of the builder app's build process type (BuildMemory, BuildPids,
// BuildDisk). At most MaxBuilds run at once in this process; further
// pushes wait in arrival order, told so, and leave the queue if their
// client goes away. With one gitreceive per cluster (the bootstrap
// manifest runs one, which every node's router reaches through the TCP
// route) that bounds the cluster's builds. git itself refuses
// a pack over MaxPushSize (receive.maxInputSize in every app repository).
// Pushes to system apps (controller.App.System) are refused: the platform
// deploys those.
//
// The SSH server holds at most MaxConns connections, MaxConnsPerIP from
// one address, and closes further ones as soon as it accepts them. A
// connection must start its command within HandshakeTimeout, is closed
// after IdleTimeout without a byte either way, and lasts at most
// MaxSessionTime. While a client waits on the server (the app's lock, a
// build slot, the build, the deployment) the server asks it for signs of
// life (SSH keepalives) instead of counting the silence: a quiet build
// keeps its push, and a client that is gone stops its build. A build's
// output reaches the client a line at a time, and a line longer than
// 16 KiB in pieces, as flynn-host keeps job logs.
package gitreceive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/openflynn/flynn/pkg/metrics"
)

// DefaultBuildMemory is a build job's memory limit when the Config names
// none: enough for npm and the Go toolchain, bounded so that one build
// cannot starve the host's apps.
const DefaultBuildMemory = 2 << 30

// DefaultDeployTimeout bounds a push's wait for its deployment when the
// Config names no bound.
const DefaultDeployTimeout = 5 * time.Minute

// DefaultReleaseTimeout bounds each one-off job a push runs of its new
// release, the Procfile's release command and app.json's postdeploy
// script, when the Config names no bound. The pusher waits on them, and
// they are for quick steps (schema migrations, seeding a new app); longer
// work belongs in a `flynn run` of its own.
const DefaultReleaseTimeout = 10 * time.Minute

// Defaults of the other build bounds (see Config).
const (
	DefaultBuildPids    = 1024
	DefaultBuildDisk    = 10 << 30
	DefaultMaxBuilds    = 2
	DefaultMaxPushSize  = 1 << 30
	DefaultBuildTimeout = time.Hour
)

// Defaults of the SSH server's bounds (see Config).
const (
	DefaultHandshakeTimeout = 30 * time.Second
	DefaultIdleTimeout      = 5 * time.Minute
	DefaultMaxConns         = 256
	DefaultMaxConnsPerIP    = 64
)

// sessionMargin is what the default MaxSessionTime adds to a build's and
// a deployment's bounds: time to upload the push and to wait for the
// app's lock and a build slot.
const sessionMargin = 30 * time.Minute

// SlugURLLifetime is how long the signed SLUG_URL of a release works. A
// release is immutable and may run, restart or be rolled back to for as
// long as the app exists, and slugrunner fetches the slug at every job
// start, so the URL must outlive any realistic release: ten years. The
// URL only reads that one slug, which its app's jobs hold anyway; rotating
// the blobstore key revokes every such URL at once.
const SlugURLLifetime = 10 * 365 * 24 * time.Hour

// uploadMargin is how much longer than BuildTimeout a build's signed
// URLs work: the build is stopped at BuildTimeout, and the margin absorbs
// clock skew between this host and the blobstore's.
const uploadMargin = 10 * time.Minute

// BuildProcessType is the builder app's process type that build jobs take
// their settings (the memory limit) from.
const BuildProcessType = "build"

// Config configures a gitreceive server.
type Config struct {
	// SSHAddr is the SSH listen address; default ":2222".
	SSHAddr string
	// MetricsAddr serves Prometheus metrics at /metrics, to requests with
	// ControllerKey; empty: none. The gitreceive command's default in a
	// job is its second port ($PORT_1) on the node's address.
	MetricsAddr string
	// StateDir holds the app repositories, the generated host key and the
	// hook socket (required). Keep it on a volume: repositories make pushes
	// incremental.
	StateDir string
	// HostKeyPEM is the SSH host key (a PEM private key). Empty: the key in
	// StateDir/ssh_host_ed25519_key, generated on first start.
	HostKeyPEM []byte

	// ControllerURL and ControllerKey reach the controller (required URL).
	// The URL may name a discoverd service ("http://controller.discoverd")
	// when HTTPClient dials such names.
	ControllerURL string
	ControllerKey string
	// HTTPClient makes the controller calls; nil: a plain client. The
	// gitreceive command gives one that dials "<service>.discoverd" hosts
	// through discoverd (discoverd/client.HTTPClient).
	HTTPClient *http.Client
	// BlobstoreURL is the blobstore's base URL ("http://blobstore.discoverd")
	// (required). Slugs go to /apps/<app id>/slug-<uuid>.tgz, the build
	// cache to /apps/<app id>/cache.tgz. Only build and app jobs use it,
	// through the signed URLs they get, so it must be an address those
	// jobs reach: with app jobs off the host network, the router's
	// blobstore.<domain>, which must pass paths and queries through as
	// they are (the signature covers the path).
	BlobstoreURL string
	// BlobstoreKey signs the URLs that build and app jobs get (the
	// blobstore's own --blobstore-key); default ControllerKey. Empty hands
	// out plain URLs, for a blobstore run without a key.
	BlobstoreKey string
	// SlugbuilderImage and SlugrunnerImage are Docker image references on
	// the hosts (required).
	SlugbuilderImage string
	SlugrunnerImage  string
	// Stacks are the images of the stacks other than the default (package
	// pkg/stacks) by name; a stack not here is not built on this
	// cluster.
	Stacks map[string]StackImages
	// BuilderApp is the app build jobs run under; default "slugbuilder".
	BuilderApp string
	// BuildMemory is a build job's memory limit in bytes; default
	// DefaultBuildMemory.
	BuildMemory int64
	// BuildPids bounds a build job's processes and threads; default
	// DefaultBuildPids.
	BuildPids int64
	// BuildDisk bounds what a build job writes to its filesystem, in
	// bytes; default DefaultBuildDisk.
	BuildDisk int64
	// BuildTimeout bounds a build (not the deployment after it); default
	// DefaultBuildTimeout.
	BuildTimeout time.Duration
	// MaxBuilds is how many builds this process runs at once; further
	// pushes wait for a slot. Default DefaultMaxBuilds.
	MaxBuilds int
	// MaxPushSize is the largest pack a push may send, in bytes (git's
	// receive.maxInputSize); default DefaultMaxPushSize.
	MaxPushSize int64

	// HookCommand is the pre-receive hook's command line; default this
	// executable with the argument "hook". The hook finds this server
	// through its environment.
	HookCommand []string
	// GitPath is the git binary; default "git" from PATH.
	GitPath string
	// DeployTimeout bounds the wait for a deployment; default 5 minutes.
	DeployTimeout time.Duration
	// ReleaseTimeout bounds each one-off job a push runs of its new
	// release (the release command, the postdeploy script): one still
	// running is stopped and the push fails. Default
	// DefaultReleaseTimeout.
	ReleaseTimeout time.Duration

	// HandshakeTimeout bounds the time from accepting a connection to the
	// start of its command (SSH handshake, authentication, session), so a
	// client that never speaks holds nothing for long; default
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection once no byte has gone either way for
	// this long; default DefaultIdleTimeout. While the client waits on
	// the server (for the app's lock, a build slot, the build, the
	// deployment) the server asks it for a sign of life every half
	// IdleTimeout instead, and hangs up when none comes within IdleTimeout,
	// so a quiet build keeps its push while a vanished client frees its
	// build.
	IdleTimeout time.Duration
	// MaxSessionTime bounds a connection's whole life; default
	// BuildTimeout + 2×ReleaseTimeout (a first push may run a release
	// command and a postdeploy script) + DeployTimeout + sessionMargin, so
	// that the bound never cuts a push short of its own.
	MaxSessionTime time.Duration
	// MaxConns bounds the connections open at once; further ones are
	// closed as soon as they are accepted. Default DefaultMaxConns.
	MaxConns int
	// MaxConnsPerIP bounds the connections open at once from one client
	// address; default DefaultMaxConnsPerIP. Behind the router's TCP
	// route the address is a router's, so this bounds what one node's
	// router holds of gitreceive, and per-client bounds are the router's.
	MaxConnsPerIP int
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
	if c.BuildPids <= 0 {
		c.BuildPids = DefaultBuildPids
	}
	if c.BuildDisk <= 0 {
		c.BuildDisk = DefaultBuildDisk
	}
	if c.BuildTimeout <= 0 {
		c.BuildTimeout = DefaultBuildTimeout
	}
	if c.MaxBuilds <= 0 {
		c.MaxBuilds = DefaultMaxBuilds
	}
	if c.MaxPushSize <= 0 {
		c.MaxPushSize = DefaultMaxPushSize
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
	if c.ReleaseTimeout <= 0 {
		c.ReleaseTimeout = DefaultReleaseTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxSessionTime <= 0 {
		c.MaxSessionTime = c.BuildTimeout + 2*c.ReleaseTimeout + c.DeployTimeout + sessionMargin
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = DefaultMaxConnsPerIP
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

// Run serves SSH on cfg.SSHAddr, and metrics on cfg.MetricsAddr, until
// ctx ends.
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	metricsAddr, stopMetrics := "", func() error { return nil }
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("gitreceive: metrics listen: %w", err)
		}
		metricsAddr = mln.Addr().String()
		// Served until SSH has stopped, not only until ctx ends; a failure
		// of the metrics server ends Run.
		metricsCtx, endMetrics := context.WithCancel(context.WithoutCancel(ctx))
		served := make(chan error, 1)
		go func() {
			err := metrics.Serve(metricsCtx, mln, s.MetricsHandler(), logger)
			if err != nil {
				err = fmt.Errorf("gitreceive: %w", err)
				cancel()
			}
			served <- err
		}()
		stopMetrics = func() error {
			endMetrics()
			return <-served
		}
	}
	logger.Info("gitreceive listening", "addr", ln.Addr().String(), "metrics", metricsAddr)
	err = s.Serve(ctx, ln)
	return errors.Join(err, stopMetrics())
}
