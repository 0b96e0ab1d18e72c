package hostcli

import (
	"fmt"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/bootstrap"
	"github.com/openflynn/flynn/pkg/cmdline"
)

func upgradeCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "upgrade",
		Usage:     "move a bootstrapped cluster's components to the images of a newer build, one deployment at a time",
		ArgsUsage: "MANIFEST",
		Flags: []cli.Flag{
			imagesFlag(),
			discoverdURLFlag("discoverd URL"),
			cmdline.Duration("deploy-timeout", 0, "bound of each component's deployment (default 5m)"),
		},
		Action: func(c *cli.Context) error {
			m, refs, cl, err := manifestArgs(c, "upgrade")
			if err != nil {
				return err
			}
			if m.Controller.Service == "" {
				return fmt.Errorf("manifest %s names no controller service", c.Args().First())
			}
			defer cl.http.CloseIdleConnections()
			// The manifest's controller key is "{{controller-key}}", a
			// gen-random step whose value is the cluster key. Only a
			// bootstrap run has the step values to expand it with, so
			// upgrade uses the cluster key as the controller key.
			cfg := bootstrap.UpgradeConfig{
				Controller:    cl.controller(m.Controller.URL(), cl.key),
				Images:        refs,
				Out:           env.Stdout,
				Now:           env.Now,
				DeployTimeout: c.Duration("deploy-timeout"),
			}
			logger := slog.New(slog.NewTextHandler(env.Stderr, nil))
			res, err := bootstrap.Upgrade(c.Context, cfg, m, logger)
			if err != nil {
				return err
			}
			counts := map[bootstrap.UpgradeOutcome]int{}
			for _, cu := range res.Components {
				counts[cu.Outcome]++
			}
			fmt.Fprintf(env.Stderr, "upgrade took %s: %d deployed, %d up to date, %d skipped\n", res.Duration.Round(1e6),
				counts[bootstrap.UpgradeDeployed], counts[bootstrap.UpgradeUpToDate], counts[bootstrap.UpgradeSkipped])
			return nil
		},
	}
}
