package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	urfave "github.com/urfave/cli/v2"
)

// defaultKeyFiles are tried in order by `key add` without a path.
var defaultKeyFiles = []string{"id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"}

func (r *runner) keyCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "key",
		Usage: "manage the SSH keys that may git push",
		Description: `Without a subcommand, lists the keys.

Example:
   flynn key add
   flynn key list`,
		Flags:  []urfave.Flag{jsonFlag()},
		Action: r.keyList,
		Subcommands: []*urfave.Command{
			{
				Name:      "add",
				Usage:     "allow an SSH public key to push",
				ArgsUsage: "[PATH]",
				Description: `PATH defaults to the first of ~/.ssh/id_ed25519.pub, id_ecdsa.pub and
id_rsa.pub that exists, then any other ~/.ssh/id_*.pub.

Example:
   flynn key add ~/.ssh/id_ed25519.pub`,
				Action: r.keyAdd,
			},
			{
				Name:        "list",
				Usage:       "list keys",
				Description: "Example:\n   flynn key list --json",
				Flags:       []urfave.Flag{jsonFlag()},
				Action:      r.keyList,
			},
			{
				Name:        "remove",
				Usage:       "remove a key by fingerprint or id",
				ArgsUsage:   "FINGERPRINT|ID",
				Description: "Example:\n   flynn key remove SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
				Action:      r.keyRemove,
			},
		},
	}
}

// findKeyFile picks the public key `key add` sends when given no path.
func findKeyFile(home string) (string, error) {
	dir := filepath.Join(home, ".ssh")
	for _, name := range defaultKeyFiles {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "id_*.pub"))
	if len(matches) > 0 {
		return matches[0], nil
	}
	return "", fmt.Errorf("no public key in %s (id_*.pub); create one with ssh-keygen or give a PATH", dir)
}

func (r *runner) keyAdd(c *urfave.Context) error {
	if c.NArg() > 1 {
		return usageError(c, "want at most one PATH")
	}
	path := c.Args().First()
	if path == "" {
		var err error
		if path, err = findKeyFile(r.env.Home); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read key: %w", err)
	}
	text := strings.TrimSpace(string(data))
	if strings.Contains(text, "PRIVATE KEY") {
		return fmt.Errorf("%s is a private key; give its .pub file", path)
	}
	api, err := r.connect(c)
	if err != nil {
		return err
	}
	k, err := api.CreateKey(c.Context, text)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.env.Stdout, "Key %s added.\n", k.Fingerprint)
	return nil
}

func (r *runner) keyList(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "unknown subcommand %q", c.Args().First())
	}
	api, err := r.connect(c)
	if err != nil {
		return err
	}
	keys, err := api.Keys(c.Context)
	if err != nil {
		return err
	}
	if lookupBool(c, "json") {
		return writeJSON(r.env.Stdout, keys)
	}
	return renderKeys(r.env.Stdout, r.env.Now(), keys)
}

func (r *runner) keyRemove(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want FINGERPRINT or ID")
	}
	api, err := r.connect(c)
	if err != nil {
		return err
	}
	id := c.Args().First()
	// Fingerprints hold "/", so they cannot go in a URL path: look the key
	// up first.
	if strings.HasPrefix(id, "SHA256:") {
		k, err := api.KeyByFingerprint(c.Context, id)
		if err != nil {
			return err
		}
		id = k.ID
	}
	if err := api.DeleteKey(c.Context, id); err != nil {
		return err
	}
	fmt.Fprintf(r.env.Stdout, "Key %s removed.\n", c.Args().First())
	return nil
}

var errNoRelease = errors.New("the app has no release yet; git push to it first")
