package cli

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
)

func (r *runner) resourceCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "resource",
		Usage: "provision resources (databases) for an app",
		Description: `Example:
   flynn resource add postgres`,
		Subcommands: []*urfave.Command{
			{
				Name:      "add",
				Usage:     "provision a resource and attach it to the app",
				ArgsUsage: "PROVIDER",
				Description: `Has PROVIDER provision a resource; the app gets a new release with the
resource's env (DATABASE_URL, say) merged in, deployed.

Example:
   flynn -a example resource add postgres`,
				Flags: append([]urfave.Flag{
					appFlag(),
					jsonFlag(),
					&urfave.StringFlag{Name: "config", Usage: "`JSON` passed to the provider as is"},
				}, systemFlags()...),
				Action: r.resourceAdd,
			},
		},
	}
}

func (r *runner) resourceAdd(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want PROVIDER")
	}
	req := &controller.ResourceRequest{}
	if cfg := c.String("config"); cfg != "" {
		if !json.Valid([]byte(cfg)) {
			return usageError(c, "--config is not JSON")
		}
		req.Config = json.RawMessage(cfg)
	}
	api, app, err := r.changeApp(c)
	if err != nil {
		return err
	}
	req.Apps = []string{app.ID}
	res, err := api.ProvisionResource(c.Context, c.Args().First(), req)
	if err != nil {
		return err
	}
	if lookupBool(c, "json") {
		return writeJSON(r.env.Stdout, res)
	}
	fmt.Fprintf(r.env.Stdout, "Created resource %s and released %s with %s.\n", res.ID, app.Name, strings.Join(slices.Sorted(maps.Keys(res.Env)), ", "))
	return nil
}
