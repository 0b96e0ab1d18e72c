package gitreceive

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/discoverd"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/pkg/cmdline"
)

// Daemon is the gitreceive binary: its flags and how they become a Config,
// and the `hook` subcommand git runs as the pre-receive hook.
func Daemon() cmdline.Daemon[Config] {
	flags := []cli.Flag{
		cmdline.String("ssh-addr", ":2222", "SSH listen address (default :$PORT in a job)", cmdline.Was("SSH_ADDR")),
		cmdline.String("metrics-addr", "", "metrics (/metrics, behind the controller key) listen address (default in a job: --external-ip:$PORT_1, its second port; empty: none)"),
		cmdline.String("state-dir", "/var/lib/gitreceive", "repositories, host key and hook socket", cmdline.Was("STATE_DIR")),
		cmdline.String("controller-url", "", "controller URL; http://controller.discoverd reaches any live controller", cmdline.Was("--controller", "CONTROLLER_URL")),
		cmdline.String("discoverd-url", "", "discoverd, through which discoverd names in --controller-url are reached (default: http://EXTERNAL_IP:1111 in a job)", cmdline.Was("--discoverd", "DISCOVERD")),
		cmdline.String("external-ip", "", "this node's address, whose discoverd is the default", cmdline.Was("EXTERNAL_IP")),
		cmdline.String("blobstore-url", "http://blobstore.discoverd", "blobstore URL", cmdline.Was("--blobstore", "BLOBSTORE_URL")),
		cmdline.String("slugbuilder-image", "", "slugbuilder image reference", cmdline.Was("SLUGBUILDER_IMAGE")),
		cmdline.String("slugrunner-image", "", "slugrunner image reference", cmdline.Was("SLUGRUNNER_IMAGE")),
		cmdline.List("stack-slugbuilder", "`NAME=IMAGE`: the slugbuilder image of a stack other than the default (repeat, or comma-separate); a stack needs both images to be built"),
		cmdline.List("stack-slugrunner", "`NAME=IMAGE`: the slugrunner image of a stack other than the default"),
		cmdline.String("builder-app", "slugbuilder", "app build jobs run under", cmdline.Was("BUILDER_APP")),
		cmdline.Size("build-memory", DefaultBuildMemory, "a build job's memory limit"),
		cmdline.Int("build-pids", DefaultBuildPids, "a build job's limit on processes and threads"),
		cmdline.Size("build-disk", DefaultBuildDisk, "how much a build job may write to its filesystem"),
		cmdline.Duration("build-timeout", DefaultBuildTimeout, "how long a build may run; its upload URLs expire soon after"),
		cmdline.Int("max-builds", DefaultMaxBuilds, "builds this gitreceive runs at once; further pushes wait their turn (with one gitreceive per cluster, the cluster's bound)"),
		cmdline.Size("max-push-size", DefaultMaxPushSize, "largest pack a push may send (git's receive.maxInputSize)"),
		cmdline.Duration("deploy-timeout", DefaultDeployTimeout, "how long a push waits for its deployment"),
		cmdline.Duration("release-timeout", DefaultReleaseTimeout, "how long the release command (Procfile's release:) and app.json's postdeploy script may each run"),
		cmdline.Duration("handshake-timeout", DefaultHandshakeTimeout, "how long a client may take from connecting to starting its command (SSH handshake and authentication)"),
		cmdline.Duration("idle-timeout", DefaultIdleTimeout, "close a connection after this long without a byte either way (a client waiting on a build is asked for signs of life instead)"),
		maxSessionTimeFlag(),
		cmdline.Int("max-conns", DefaultMaxConns, "SSH connections open at once; further ones are closed at once"),
		cmdline.Int("max-conns-per-ip", DefaultMaxConnsPerIP, "SSH connections open at once from one address (behind the router's TCP route, one node's router)"),
		cmdline.Insecure(),
	}
	flags = append(flags, cmdline.Secret("controller-key", "controller key (required unless --insecure)", cmdline.Was("CONTROLLER_KEY", "FLYNN_AUTH_KEY"))...)
	flags = append(flags, cmdline.Secret("blobstore-key", "the blobstore's key, which signs the URLs jobs get (default: the controller key)", cmdline.Was("BLOBSTORE_KEY"))...)
	flags = append(flags, cmdline.Secret("ssh-host-key", "SSH host key, a PEM private key (default: generated in the state dir)", cmdline.Was("SSH_PRIVATE_KEY"))...)
	return cmdline.Daemon[Config]{
		Name:  "gitreceive",
		Usage: "Flynn's git server: `git push` over SSH builds and deploys apps",
		Flags: flags,
		Config: func(c *cli.Context, logger *slog.Logger) (Config, error) {
			cfg := Config{
				SSHAddr:          cmdline.ListenAddr(c, "ssh-addr"),
				MetricsAddr:      cmdline.JobPortAddr(c, "metrics-addr", 1),
				StateDir:         c.String("state-dir"),
				ControllerURL:    c.String("controller-url"),
				BlobstoreURL:     c.String("blobstore-url"),
				SlugbuilderImage: c.String("slugbuilder-image"),
				SlugrunnerImage:  c.String("slugrunner-image"),
				BuilderApp:       c.String("builder-app"),
				BuildMemory:      cmdline.SizeOf(c, "build-memory"),
				BuildPids:        int64(c.Int("build-pids")),
				BuildDisk:        cmdline.SizeOf(c, "build-disk"),
				BuildTimeout:     c.Duration("build-timeout"),
				MaxBuilds:        c.Int("max-builds"),
				MaxPushSize:      cmdline.SizeOf(c, "max-push-size"),
				DeployTimeout:    c.Duration("deploy-timeout"),
				ReleaseTimeout:   c.Duration("release-timeout"),
				HandshakeTimeout: c.Duration("handshake-timeout"),
				IdleTimeout:      c.Duration("idle-timeout"),
				MaxSessionTime:   c.Duration("max-session-time"),
				MaxConns:         c.Int("max-conns"),
				MaxConnsPerIP:    c.Int("max-conns-per-ip"),
			}
			var err error
			if cfg.Stacks, err = stackImages(cmdline.ListOf(c, "stack-slugbuilder"), cmdline.ListOf(c, "stack-slugrunner")); err != nil {
				return cfg, err
			}
			for _, name := range []string{"build-pids", "max-builds", "max-conns", "max-conns-per-ip"} {
				if c.Int(name) < 1 {
					return cfg, fmt.Errorf("--%s must be at least 1", name)
				}
			}
			if u := discoverdURL(c); u != "" {
				// Reads need no key.
				cfg.HTTPClient = discoverdclient.HTTPClient(discoverdclient.New(u, ""))
			}
			// Without the controller key gitreceive could only work with a
			// controller that admits everyone, and would hand build jobs
			// unsigned blobstore URLs (the blobstore key defaults to it).
			if cfg.ControllerKey, err = cmdline.RequiredKey(c, logger, "controller-key"); err != nil {
				return cfg, err
			}
			if cfg.BlobstoreKey, err = cmdline.SecretOf(c, "blobstore-key"); err != nil {
				return cfg, err
			}
			hostKey, err := cmdline.SecretOf(c, "ssh-host-key")
			if err != nil {
				return cfg, err
			}
			if hostKey != "" {
				cfg.HostKeyPEM = []byte(hostKey)
			}
			return cfg, cfg.setDefaults()
		},
		Run: Run,
		Commands: []*cli.Command{{
			Name:   "hook",
			Usage:  "the pre-receive hook git runs (not for people)",
			Hidden: true,
			Action: func(c *cli.Context) error {
				if code := RunHook(os.Stdin, os.Stdout, os.Stderr, os.Getenv); code != 0 {
					return cli.Exit("", code)
				}
				return nil
			},
		}},
	}
}

// maxSessionTimeFlag is --max-session-time, whose default follows the
// build's bounds (see Config.MaxSessionTime).
func maxSessionTimeFlag() cli.Flag {
	f := cmdline.Duration("max-session-time", 0, "the longest an SSH connection may last")
	f.DefaultText = fmt.Sprintf("--build-timeout + 2 × --release-timeout + --deploy-timeout + %dm", int(sessionMargin.Minutes()))
	return f
}

// discoverdURL is --discoverd-url or, when it is not given and gitreceive
// runs as a job (flynn-host sets $FLYNN_EXTERNAL_IP), the discoverd of its
// own node; "" when neither is known.
func discoverdURL(c *cli.Context) string {
	if u := c.String("discoverd-url"); u != "" {
		return u
	}
	if ip := c.String("external-ip"); ip != "" {
		return discoverd.NodeURL(ip)
	}
	return ""
}
