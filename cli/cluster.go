package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/controller/client"
)

func (r *runner) clusterCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "cluster",
		Usage: "manage the clusters this CLI knows",
		Description: `Clusters live in ~/.flynnrc (mode 0600). Without a subcommand, lists them.

Example:
   flynn cluster add -p <pin> default example.com - <<<KEY
   flynn cluster list`,
		Flags:  []urfave.Flag{jsonFlag()},
		Action: r.clusterList,
		Subcommands: []*urfave.Command{
			{
				Name:      "add",
				Usage:     "add a cluster",
				ArgsUsage: "NAME DOMAIN [-|KEY]",
				Description: `Adds a cluster whose controller is https://controller.DOMAIN, checking its
TLS certificate against PIN (the base64 SHA-256 of the certificate's DER,
as bootstrap prints it) on every connection. --controller-addr dials an
address instead of resolving the domain, so no DNS entry is needed. The
first cluster added becomes the default.

--git-host-key is gitreceive's SSH host key. It goes to ~/.ssh/known_hosts
for the git host (replacing a former key for that address alone), so the
first ` + "`git push`" + ` is verified without a prompt and another key is refused;
` + "`flynn create`" + ` writes it again when it is missing. Without it ssh asks
to trust the key on the first push.

The key is your API key (bootstrap prints the first one, "admin"; more come
from ` + "`flynn api-key add`" + `). Give it on stdin with "-", or in a file with
--key-file, not as an argument: arguments show in ` + "`ps`" + ` to every user of the
machine.

Example:
   flynn cluster add -p 9Zxq…= -g 127.0.0.1:2222 --git-host-key 'ssh-ed25519 AAAAC3Nz…' --controller-addr 127.0.0.1:443 default dev.localflynn.com - <<<3b1f…
   flynn cluster add -p 9Zxq…= --key-file ~/flynn.key default dev.localflynn.com`,
				Flags: []urfave.Flag{
					&urfave.StringFlag{Name: "key-file", Usage: "read the API key from `FILE` (instead of the KEY argument)"},
					&urfave.StringFlag{Name: "tls-pin", Aliases: []string{"p"}, Usage: "base64 SHA-256 of the controller certificate (DER)"},
					&urfave.StringFlag{Name: "git-host", Aliases: []string{"g"}, Usage: "gitreceive `HOST:PORT` for git remotes (default: DOMAIN:2222)"},
					&urfave.StringFlag{Name: "git-host-key", Usage: "gitreceive's SSH host `KEY` (\"ssh-ed25519 AAAA…\", as bootstrap prints it), written to ~/.ssh/known_hosts so git verifies the cluster"},
					&urfave.StringFlag{Name: "controller-addr", Usage: "dial `HOST:PORT` for the controller instead of resolving controller.DOMAIN"},
					&urfave.StringFlag{Name: "controller-url", Usage: "controller `URL` (default: https://controller.DOMAIN; http:// URLs need no pin)"},
					&urfave.BoolFlag{Name: "no-check", Usage: "save without checking that the controller answers to the pin and key"},
					&urfave.BoolFlag{Name: "default", Aliases: []string{"d"}, Usage: "make it the default cluster"},
				},
				Action: r.clusterAdd,
			},
			{
				Name:        "remove",
				Usage:       "forget a cluster",
				ArgsUsage:   "NAME",
				Description: "Example:\n   flynn cluster remove staging",
				Action:      r.clusterRemove,
			},
			{
				Name:        "list",
				Usage:       "list clusters",
				Description: "Example:\n   flynn cluster list --json",
				Flags:       []urfave.Flag{jsonFlag()},
				Action:      r.clusterList,
			},
			{
				Name:        "default",
				Usage:       "show or set the default cluster",
				ArgsUsage:   "[NAME]",
				Description: "Example:\n   flynn cluster default production",
				Action:      r.clusterDefault,
			},
			r.clusterBackupCommand(), r.clusterRestoreCommand(), r.clusterBuildEnvCommand(),
		},
	}
}

func (r *runner) clusterAdd(c *urfave.Context) error {
	if c.NArg() != 2 && c.NArg() != 3 {
		return usageError(c, "want NAME DOMAIN, and the key on stdin (-) or in --key-file")
	}
	name, domain := c.Args().Get(0), c.Args().Get(1)
	key, err := r.clusterAddKey(c)
	if err != nil {
		return err
	}
	cl := &config.Cluster{
		Name:           name,
		Domain:         domain,
		ControllerURL:  c.String("controller-url"),
		ControllerAddr: c.String("controller-addr"),
		Key:            key,
		TLSPin:         c.String("tls-pin"),
		GitHost:        c.String("git-host"),
	}
	if cl.ControllerURL == "" {
		cl.ControllerURL = "https://controller." + domain
	}
	if cl.GitHost == "" {
		cl.GitHost = domain + ":2222"
	}
	if k := c.String("git-host-key"); k != "" {
		if cl.GitHostKey, err = parseHostKey(k); err != nil {
			return fmt.Errorf("--git-host-key: %w", err)
		}
	}
	hc, err := httpClient(cl)
	if err != nil {
		return err
	}
	defer hc.CloseIdleConnections()
	f, err := config.Load(r.env.ConfigPath)
	if err != nil {
		return err
	}
	if err := f.Add(cl); err != nil {
		return err
	}
	if !c.Bool("no-check") {
		// Listing apps proves both the pin and the key.
		ctx, cancel := context.WithTimeout(c.Context, 15*time.Second)
		defer cancel()
		if _, err := client.NewWithHTTPClient(cl.ControllerURL, cl.Key, hc).Apps(ctx); err != nil {
			return fmt.Errorf("cluster %s not added: %w", name, err)
		}
	}
	if c.Bool("default") {
		f.Default = name
	}
	if err := f.Save(r.env.ConfigPath); err != nil {
		return err
	}
	fmt.Fprintf(r.env.Stdout, "Cluster %q added", name)
	if f.Default == name {
		fmt.Fprint(r.env.Stdout, " and set as default")
	}
	fmt.Fprintln(r.env.Stdout, ".")
	if err := trustGitHost(r.env.Home, cl, r.env.Stdout, r.env.Stderr); err != nil {
		return fmt.Errorf("cluster %s added, but git will ask to trust its host key: %w", name, err)
	}
	return nil
}

// clusterAddKey reads the key of `cluster add`: from --key-file, from
// stdin when the KEY argument is "-", or (kept for old scripts) the
// argument itself.
func (r *runner) clusterAddKey(c *urfave.Context) (string, error) {
	arg, file := c.Args().Get(2), c.String("key-file")
	var key string
	switch {
	case arg != "" && file != "":
		return "", usageError(c, "give the key once: as KEY, or with --key-file")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--key-file: %w", err)
		}
		key = strings.TrimSpace(string(b))
	case arg == "-":
		line, err := r.readLine()
		if err != nil {
			return "", fmt.Errorf("read the key from stdin: %w", err)
		}
		key = line
	case arg != "":
		key = arg
	default:
		return "", usageError(c, "want the key on stdin (-) or in --key-file")
	}
	if key == "" {
		return "", errors.New("the key is empty")
	}
	return key, nil
}

func (r *runner) clusterRemove(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want NAME")
	}
	f, err := config.Load(r.env.ConfigPath)
	if err != nil {
		return err
	}
	name := c.Args().First()
	if err := f.Remove(name); err != nil {
		return err
	}
	if err := f.Save(r.env.ConfigPath); err != nil {
		return err
	}
	fmt.Fprintf(r.env.Stdout, "Cluster %q removed.\n", name)
	return nil
}

func (r *runner) clusterList(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "unknown subcommand %q", c.Args().First())
	}
	f, err := config.Load(r.env.ConfigPath)
	if err != nil {
		return err
	}
	if lookupBool(c, "json") {
		// Keys stay in the file: scripts that list clusters need names.
		type entry struct {
			Name          string `json:"name"`
			Domain        string `json:"domain"`
			ControllerURL string `json:"controller_url"`
			GitHost       string `json:"git_host"`
			Default       bool   `json:"default"`
		}
		out := []entry{}
		for _, cl := range f.Clusters {
			out = append(out, entry{cl.Name, cl.Domain, cl.ControllerURL, cl.GitHost, cl.Name == f.Default})
		}
		return writeJSON(r.env.Stdout, out)
	}
	return renderClusters(r.env.Stdout, f)
}

func (r *runner) clusterDefault(c *urfave.Context) error {
	f, err := config.Load(r.env.ConfigPath)
	if err != nil {
		return err
	}
	switch c.NArg() {
	case 0:
		if f.Default == "" {
			return fmt.Errorf("no default cluster")
		}
		fmt.Fprintln(r.env.Stdout, f.Default)
		return nil
	case 1:
		if err := f.SetDefault(c.Args().First()); err != nil {
			return err
		}
		if err := f.Save(r.env.ConfigPath); err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stdout, "%q is now the default cluster.\n", f.Default)
		return nil
	}
	return usageError(c, "want at most one NAME")
}
