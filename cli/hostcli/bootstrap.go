package hostcli

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/bootstrap"
	ctrlclient "github.com/openflynn/flynn/controller/client"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/images"
	"github.com/openflynn/flynn/pkg/cmdline"
)

// imagesFlag is --images, the images manifest that bootstrap and upgrade
// take their image references from.
func imagesFlag() cli.Flag {
	return cmdline.String("images", "bin/images.json", "images manifest written by `make images`")
}

// discoverdURLFlag is --discoverd-url, the discoverd that bootstrap and
// upgrade reach the cluster's services through.
func discoverdURLFlag(usage string, opts ...cmdline.Option) cli.Flag {
	return cmdline.String("discoverd-url", "http://127.0.0.1:1111", usage, opts...)
}

func bootstrapCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "bootstrap",
		Usage:     "bring a cluster up on this host from a manifest (bootstrap/manifest.json)",
		ArgsUsage: "MANIFEST",
		Flags: []cli.Flag{
			imagesFlag(),
			cmdline.String("domain", bootstrap.DefaultDomain, "cluster domain (the controller is controller.DOMAIN)", cmdline.Was("CLUSTER_DOMAIN")),
			discoverdURLFlag("discoverd URL, once the manifest has started it", cmdline.Was("--discoverd", "DISCOVERD")),
			cmdline.String("state-dir", "/var/lib/flynn", "the host's state directory (a forced run removes the manifest's volumes there)"),
			cmdline.String("cluster-add-file", "/var/lib/flynn/cluster-add", "file the `flynn cluster add` line is written to (empty: none)"),
			cmdline.String("join-file", "/var/lib/flynn/join", "file the line that makes another machine a node is written to (empty: none); it holds the cluster key"),
			cmdline.Bool("force", false, "tear down the cluster already on this host and bootstrap again"),
			cmdline.Duration("wait-timeout", 0, "default bound of each wait step (default 2m)"),
		},
		Action: func(c *cli.Context) error {
			m, refs, cl, err := manifestArgs(c, "bootstrap")
			if err != nil {
				return err
			}
			stateDir := c.String("state-dir")
			cfg := bootstrap.Config{
				Host:      hostClient(c),
				Discoverd: cl.discoverd,
				NewController: func(url, key string) bootstrap.Controller {
					return cl.controller(url, key)
				},
				HTTPClient:  cl.http,
				Images:      refs,
				Domain:      c.String("domain"),
				ClusterKey:  cl.key,
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

// manifestArgs reads what bootstrap and upgrade (command) take: the
// manifest their one argument names, the images of --images, and the
// cluster.
func manifestArgs(c *cli.Context, command string) (*bootstrap.Manifest, map[string]string, *cluster, error) {
	if c.NArg() != 1 {
		return nil, nil, nil, fmt.Errorf("usage: flynn-host %s [flags] MANIFEST", command)
	}
	m, err := bootstrap.ReadManifest(c.Args().First())
	if err != nil {
		return nil, nil, nil, err
	}
	refs, err := imageRefs(c.String("images"))
	if err != nil {
		return nil, nil, nil, err
	}
	cl, err := clusterOf(c)
	if err != nil {
		return nil, nil, nil, err
	}
	return m, refs, cl, nil
}

// imageRefs reads the images manifest `make images` writes and returns
// its references by image key.
func imageRefs(path string) (map[string]string, error) {
	imgs, err := images.ReadManifest(path)
	if err != nil {
		return nil, fmt.Errorf("%w (build the images with `make images`)", err)
	}
	refs := make(map[string]string, len(imgs))
	for k, b := range imgs {
		refs[k] = b.Ref
	}
	return refs, nil
}

// cluster is how bootstrap and upgrade reach the cluster's components: by
// discoverd service name ("http://controller.discoverd"), looked up at each
// connection in the discoverd --discoverd-url names, wherever they run.
type cluster struct {
	// key is the cluster key.
	key       string
	discoverd *discoverdclient.Client
	// http dials discoverd names.
	http *http.Client
}

// clusterOf returns the cluster the command line names.
func clusterOf(c *cli.Context) (*cluster, error) {
	key, err := cmdline.SecretOf(c, "cluster-key")
	if err != nil {
		return nil, err
	}
	disc := discoverdclient.New(c.String("discoverd-url"), key)
	return &cluster{key: key, discoverd: disc, http: discoverdclient.HTTPClient(disc)}, nil
}

// controller returns a client of the controller at url, a discoverd name,
// with key.
func (cl *cluster) controller(url, key string) *ctrlclient.Client {
	return ctrlclient.NewWithHTTPClient(url, key, cl.http)
}
