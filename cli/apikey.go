package cli

import (
	"fmt"
	"io"
	"strings"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/controller"
)

func (r *runner) apiKeyCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "api-key",
		Usage: "manage the API keys people use the cluster with",
		Description: `An API key lets a person use the cluster: the flynn CLI sends it with
every request (see ` + "`flynn cluster add`" + `). The cluster keeps only a hash of
each key's secret, so a secret is shown once, when its key is added.
Without a subcommand, lists the keys. (SSH keys for git push are
` + "`flynn key`" + `.)

Example:
   flynn api-key add alice
   flynn api-key list
   flynn api-key revoke alice`,
		Flags:  []urfave.Flag{jsonFlag()},
		Action: r.apiKeyList,
		Subcommands: []*urfave.Command{
			{
				Name:      "add",
				Usage:     "make a key and print its secret, once",
				ArgsUsage: "NAME",
				Description: `NAME says whose key it is ("alice", "alice@example.com", "ci"). The
secret is printed with the ` + "`flynn cluster add`" + ` line that uses it.

Example:
   flynn api-key add alice`,
				Flags:  []urfave.Flag{jsonFlag()},
				Action: r.apiKeyAdd,
			},
			{
				Name:        "list",
				Usage:       "list keys (never their secrets)",
				Description: "Example:\n   flynn api-key list --json",
				Flags:       []urfave.Flag{jsonFlag()},
				Action:      r.apiKeyList,
			},
			{
				Name:      "revoke",
				Usage:     "revoke a key by name or id",
				ArgsUsage: "NAME|ID",
				Description: `Requests with the key fail from then on. The last key cannot be revoked
with an API key (that would lock every person out); use --system.

Example:
   flynn api-key revoke alice`,
				Flags:  systemFlags(),
				Action: r.apiKeyRevoke,
			},
		},
	}
}

func (r *runner) apiKeyAdd(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want NAME")
	}
	api, err := r.connect(c)
	if err != nil {
		return err
	}
	k, err := api.CreateAPIKey(c.Context, c.Args().First())
	if err != nil {
		return err
	}
	if lookupBool(c, "json") {
		return writeJSON(r.env.Stdout, k)
	}
	return renderNewAPIKey(r.env.Stdout, k, r.cluster)
}

// renderNewAPIKey tells the secret of a new key, once, and how to use it.
func renderNewAPIKey(w io.Writer, k *controller.APIKey, cl *config.Cluster) error {
	_, err := fmt.Fprintf(w, `Added API key %q (%s). Its secret is shown only now:

    %s

Whoever holds it adds the cluster to their flynn CLI with:

    %s

Revoke it with `+"`flynn api-key revoke %s`"+`.
`, k.Name, k.ID, k.Secret, clusterAddLine(cl, k.Secret), k.Name)
	return err
}

// clusterAddLine is the `flynn cluster add` command that adds cl with key,
// which it reads from stdin so that the key stays out of `ps`.
func clusterAddLine(cl *config.Cluster, key string) string {
	parts := []string{"flynn cluster add"}
	if cl.TLSPin != "" {
		parts = append(parts, "-p", cl.TLSPin)
	}
	if cl.GitHost != cl.Domain+":2222" {
		parts = append(parts, "-g", cl.GitHost)
	}
	if cl.GitHostKey != "" {
		parts = append(parts, "--git-host-key", "'"+cl.GitHostKey+"'") // a type and base64: nothing to escape
	}
	if cl.ControllerAddr != "" {
		parts = append(parts, "--controller-addr", cl.ControllerAddr)
	}
	if cl.ControllerURL != "https://controller."+cl.Domain {
		parts = append(parts, "--controller-url", cl.ControllerURL)
	}
	parts = append(parts, cl.Name, cl.Domain, "- <<<"+key)
	return strings.Join(parts, " ")
}

func (r *runner) apiKeyList(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "unknown subcommand %q", c.Args().First())
	}
	api, err := r.connect(c)
	if err != nil {
		return err
	}
	keys, err := api.APIKeys(c.Context)
	if err != nil {
		return err
	}
	if lookupBool(c, "json") {
		return writeJSON(r.env.Stdout, keys)
	}
	return renderAPIKeys(r.env.Stdout, r.env.Now(), keys)
}

func (r *runner) apiKeyRevoke(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want NAME or ID")
	}
	api, err := r.connect(c)
	if err != nil {
		return err
	}
	k, err := api.RevokeAPIKey(c.Context, c.Args().First())
	if err != nil {
		return err
	}
	fmt.Fprintf(r.env.Stdout, "API key %q revoked.\n", k.Name)
	return nil
}
