package hostcli

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"
)

func inspectCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show a job as JSON",
		ArgsUsage: "JOB",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("usage: flynn-host inspect JOB")
			}
			j, err := hostClient(c).GetJob(c.Context, c.Args().First())
			if err != nil {
				return err
			}
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(j)
		},
	}
}
