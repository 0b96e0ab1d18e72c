package cli

import (
	"encoding/json"
	"fmt"
	"io"
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
		Description: `Without a subcommand, lists the app's resources.

Example:
   flynn resource add postgres
   flynn resource list
   flynn resource remove 7f9c24e5-…`,
		Flags:  []urfave.Flag{appFlag(), jsonFlag()},
		Action: r.resourceList,
		Subcommands: []*urfave.Command{
			{
				Name:      "add",
				Usage:     "provision a resource and attach it to the app",
				ArgsUsage: "PROVIDER",
				Description: `Has PROVIDER provision a resource; the app gets a new release with the
resource's env (DATABASE_URL, say) merged in, deployed. An unknown
PROVIDER's error names the providers there are.

Example:
   flynn -a example resource add postgres`,
				Flags: append([]urfave.Flag{
					appFlag(),
					jsonFlag(),
					&urfave.StringFlag{Name: "config", Usage: "`JSON` passed to the provider as is"},
				}, systemFlags()...),
				Action: r.resourceAdd,
			},
			{
				Name:  "list",
				Usage: "list the app's resources",
				Description: `Shows each resource's id, provider and the names of the variables it
sets; --json shows their values too.

Example:
   flynn -a example resource list`,
				Flags:  []urfave.Flag{appFlag(), jsonFlag()},
				Action: r.resourceList,
			},
			{
				Name:      "remove",
				Usage:     "deprovision a resource (drop the database) and take it from its apps",
				ArgsUsage: "ID",
				Description: `Has the resource's provider deprovision it, which deletes its data (a
database is dropped), after you type the app's name to confirm (or with
--yes). Every app that had it gets a new release without its variables
(but for those an app has set to values of its own since), deployed.

Example:
   flynn -a example resource remove 7f9c24e5-… --yes`,
				Flags: append([]urfave.Flag{
					appFlag(),
					&urfave.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation"},
				}, systemFlags()...),
				Action: r.resourceRemove,
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
	fmt.Fprintf(r.env.Stdout, "Created resource %s and released %s with %s.\n", res.ID, app.Name, envNames(res))
	return nil
}

func (r *runner) resourceList(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "unknown subcommand %q", c.Args().First())
	}
	api, app, err := r.app(c)
	if err != nil {
		return err
	}
	list, err := api.AppResources(c.Context, app.ID)
	if err != nil {
		return err
	}
	if lookupBool(c, "json") {
		return writeJSON(r.env.Stdout, list)
	}
	providers, err := api.Providers(c.Context)
	if err != nil {
		return err
	}
	names := map[string]string{}
	for _, p := range providers {
		names[p.ID] = p.Name
	}
	return renderResources(r.env.Stdout, list, names)
}

// renderResources draws resources with their providers' names (by id)
// and the names, never the values, of their variables.
func renderResources(w io.Writer, list []*controller.Resource, providers map[string]string) error {
	t := newTable(w, "ID", "PROVIDER", "ENV")
	for _, res := range list {
		provider := providers[res.ProviderID]
		if provider == "" {
			provider = res.ProviderID
		}
		t.row(res.ID, provider, orDash(envNames(res)))
	}
	return t.flush()
}

// envNames are the names of the variables a resource sets, sorted.
func envNames(res *controller.Resource) string {
	return strings.Join(slices.Sorted(maps.Keys(res.Env)), ", ")
}

func (r *runner) resourceRemove(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want a resource ID (see `flynn resource list`)")
	}
	id := c.Args().First()
	api, app, err := r.changeApp(c)
	if err != nil {
		return err
	}
	list, err := api.AppResources(c.Context, app.ID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(list, func(res *controller.Resource) bool { return res.ID == id })
	if i < 0 {
		return fmt.Errorf("%s has no resource %s (see `flynn -a %s resource list`)", app.Name, id, app.Name)
	}
	res := list[i]
	provider := res.ProviderID
	if p, err := api.Provider(c.Context, res.ProviderID); err == nil {
		provider = p.Name
	}
	if !c.Bool("yes") {
		also := ""
		if n := len(res.Apps) - 1; n > 0 {
			also = fmt.Sprintf(" It is also taken from %d other app(s).", n)
		}
		fmt.Fprintf(r.env.Stderr, "This deletes %s resource %s and its data; %s loses %s.%s Type the app's name to confirm: ",
			provider, res.ID, app.Name, orDash(envNames(res)), also)
		answer, err := r.readLine()
		if err != nil {
			fmt.Fprintln(r.env.Stderr) // end the prompt's line
			return fmt.Errorf("no confirmation read (use --yes to skip it): %w", err)
		}
		if answer != app.Name {
			return fmt.Errorf("confirmation %q does not match %q; nothing removed", answer, app.Name)
		}
	}
	if _, err := api.DeleteResource(c.Context, res.ProviderID, res.ID); err != nil {
		return err
	}
	fmt.Fprintf(r.env.Stdout, "Removed %s resource %s; %s no longer has %s.\n", provider, res.ID, app.Name, orDash(envNames(res)))
	return nil
}
