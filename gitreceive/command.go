package gitreceive

import (
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/pkg/cmdline"
)

// Daemon is the gitreceive binary: its flags and how they become a Config,
// and the `hook` subcommand git runs as the pre-receive hook.
func Daemon() cmdline.Daemon[Config] {
	flags := []cli.Flag{
		cmdline.String("ssh-addr", ":2222", "SSH listen address (default :$PORT in a job)", cmdline.Was("SSH_ADDR")),
		cmdline.String("state-dir", "/var/lib/gitreceive", "repositories, host key and hook socket", cmdline.Was("STATE_DIR")),
		cmdline.String("controller-url", "", "controller URL", cmdline.Was("--controller", "CONTROLLER_URL")),
		cmdline.String("blobstore-url", "http://blobstore.discoverd", "blobstore URL", cmdline.Was("--blobstore", "BLOBSTORE_URL")),
		cmdline.String("slugbuilder-image", "", "slugbuilder image reference", cmdline.Was("SLUGBUILDER_IMAGE")),
		cmdline.String("slugrunner-image", "", "slugrunner image reference", cmdline.Was("SLUGRUNNER_IMAGE")),
		cmdline.String("builder-app", "slugbuilder", "app build jobs run under", cmdline.Was("BUILDER_APP")),
		cmdline.Size("build-memory", DefaultBuildMemory, "a build job's memory limit"),
		cmdline.Duration("deploy-timeout", DefaultDeployTimeout, "how long a push waits for its deployment"),
	}
	flags = append(flags, cmdline.Secret("controller-key", "controller key", cmdline.Was("CONTROLLER_KEY", "FLYNN_AUTH_KEY"))...)
	flags = append(flags, cmdline.Secret("blobstore-key", "blobstore upload key (default: the controller key)", cmdline.Was("BLOBSTORE_KEY"))...)
	flags = append(flags, cmdline.Secret("ssh-host-key", "SSH host key, a PEM private key (default: generated in the state dir)", cmdline.Was("SSH_PRIVATE_KEY"))...)
	return cmdline.Daemon[Config]{
		Name:  "gitreceive",
		Usage: "Flynn's git server: `git push` over SSH builds and deploys apps",
		Flags: flags,
		Config: func(c *cli.Context, _ *slog.Logger) (Config, error) {
			cfg := Config{
				SSHAddr:          cmdline.ListenAddr(c, "ssh-addr"),
				StateDir:         c.String("state-dir"),
				ControllerURL:    c.String("controller-url"),
				BlobstoreURL:     c.String("blobstore-url"),
				SlugbuilderImage: c.String("slugbuilder-image"),
				SlugrunnerImage:  c.String("slugrunner-image"),
				BuilderApp:       c.String("builder-app"),
				BuildMemory:      cmdline.SizeOf(c, "build-memory"),
				DeployTimeout:    c.Duration("deploy-timeout"),
			}
			var err error
			if cfg.ControllerKey, err = cmdline.SecretOf(c, "controller-key"); err != nil {
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
