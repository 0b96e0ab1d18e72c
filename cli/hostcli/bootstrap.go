package hostcli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/bootstrap"
	ctrlclient "github.com/openflynn/flynn/controller/client"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/images"
	"github.com/openflynn/flynn/pkg/cmdline"
)

func bootstrapCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "bootstrap",
		Usage:     "bring a cluster up on this host from a manifest (bootstrap/manifest.json)",
		ArgsUsage: "MANIFEST",
		Flags: []cli.Flag{
			cmdline.String("images", "bin/images.json", "images manifest written by `make images`"),
			cmdline.String("domain", bootstrap.DefaultDomain, "cluster domain (the controller is controller.DOMAIN)", cmdline.Was("CLUSTER_DOMAIN")),
			cmdline.String("discoverd-url", "http://127.0.0.1:1111", "discoverd URL, once the manifest has started it", cmdline.Was("--discoverd", "DISCOVERD")),
			cmdline.String("state-dir", "/var/lib/flynn", "the host's state directory (a forced run removes the manifest's volumes there)"),
			cmdline.String("cluster-add-file", "/var/lib/flynn/cluster-add", "file the `flynn cluster add` line is written to (empty: none)"),
			cmdline.String("join-file", "/var/lib/flynn/join", "file the line that makes another machine a node is written to (empty: none); it holds the cluster key"),
			cmdline.Bool("force", false, "tear down the cluster already on this host and bootstrap again"),
			cmdline.Duration("wait-timeout", 0, "default bound of each wait step (default 2m)"),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("usage: flynn-host bootstrap [flags] MANIFEST")
			}
			m, err := bootstrap.ReadManifest(c.Args().First())
			if err != nil {
				return err
			}
			imgs, err := images.ReadManifest(c.String("images"))
			if err != nil {
				return fmt.Errorf("%w (build the images with `make images`)", err)
			}
			refs := map[string]string{}
			for k, b := range imgs {
				refs[k] = b.Ref
			}
			key, err := cmdline.SecretOf(c, "cluster-key")
			if err != nil {
				return err
			}
			stateDir := c.String("state-dir")
			// The steps reach the components by discoverd name
			// ("http://controller.discoverd"), wherever they run.
			disc := discoverdclient.New(c.String("discoverd-url"), key)
			hc := discoverdclient.HTTPClient(disc)
			cfg := bootstrap.Config{
				Host:      hostClient(c),
				Discoverd: disc,
				NewController: func(url, key string) bootstrap.Controller {
					return ctrlclient.NewWithHTTPClient(url, key, hc)
				},
				HTTPClient:  hc,
				Images:      refs,
				Domain:      c.String("domain"),
				ClusterKey:  key,
				Force:       c.Bool("force"),
				Out:         env.Stdout,
				WaitTimeout: c.Duration("wait-timeout"),
				RemoveVolume: func(name string) error {
					if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
						return fmt.Errorf("invalid volume name %q", name)
					}
					return os.RemoveAll(filepath.Join(stateDir, "volumes", name))
				},
			}
			logger := slog.New(slog.NewTextHandler(env.Stderr, nil))
			res, err := bootstrap.Run(c.Context, cfg, m, logger)
			if errors.Is(err, bootstrap.ErrBootstrapped) {
				fmt.Fprintln(env.Stderr, "flynn-host bootstrap:", err)
				if line, rerr := os.ReadFile(c.String("cluster-add-file")); rerr == nil {
					fmt.Fprintf(env.Stderr, "its cluster-add line (%s):\n%s", c.String("cluster-add-file"), line)
				}
				if f := c.String("join-file"); f != "" {
					if _, rerr := os.Stat(f); rerr == nil {
						fmt.Fprintf(env.Stderr, "the line that makes another machine a node is in %s\n", f)
					}
				}
				return exitCode(3)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stderr, "bootstrap took %s\n", res.Duration.Round(1e6))
			if f := c.String("cluster-add-file"); f != "" && res.ClusterAdd != "" {
				if err := os.WriteFile(f, []byte(res.ClusterAdd+"\n"), 0o600); err != nil {
					return fmt.Errorf("write %s: %w", f, err)
				}
			}
			if f := c.String("join-file"); f != "" && res.Join != "" {
				if err := os.WriteFile(f, []byte(res.Join+"\n"), 0o600); err != nil {
					return fmt.Errorf("write %s: %w", f, err)
				}
			}
			return nil
		},
	}
}
