package cli

import (
	"fmt"

	urfave "github.com/urfave/cli/v2"
)

func (r *runner) versionCommand() *urfave.Command {
	return &urfave.Command{
		Name:        "version",
		Usage:       "print the CLI's version",
		Description: "Example:\n   flynn version",
		Action: func(c *urfave.Context) error {
			fmt.Fprintf(r.env.Stdout, "flynn %s\n", r.env.Version)
			return nil
		},
	}
}
