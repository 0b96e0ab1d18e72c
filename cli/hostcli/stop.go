package hostcli

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func stopCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "stop",
		Usage:     "stop jobs (SIGTERM, then SIGKILL after their grace period)",
		ArgsUsage: "JOB...",
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("usage: flynn-host stop JOB [JOB ...]")
			}
			for _, id := range c.Args().Slice() {
				j, err := hostClient(c).StopJob(c.Context, id)
				if err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "%s %s\n", id, j.State)
			}
			return nil
		},
	}
}
