package cli

import (
	"context"
	"fmt"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// statusTimeout bounds how long `flynn version` waits for the cluster: it
// is what one runs to find out what is wrong.
const statusTimeout = 3 * time.Second

func (r *runner) versionCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "version",
		Usage: "print the CLI's version, and the cluster's",
		Description: `Prints the CLI's version and, when a cluster is configured, the version of
its controller (or why it did not answer within 3s). flynn --version and
flynn -v print the same.

Example:
   flynn version
   flynn -c staging version`,
		Action: r.version,
	}
}

func (r *runner) version(c *urfave.Context) error {
	fmt.Fprintf(r.env.Stdout, "flynn %s\n", r.env.Version)
	if f, err := config.Load(r.env.ConfigPath); err == nil && len(f.Clusters) == 0 {
		return nil // nothing to ask
	}
	ctx, cancel := context.WithTimeout(c.Context, statusTimeout)
	defer cancel()
	api, err := r.connect(c)
	if err != nil {
		fmt.Fprintf(r.env.Stdout, "cluster: unknown (%s)\n", errorLine(err))
		return nil
	}
	where := r.cluster.Name + " at " + r.cluster.ControllerURL
	status, err := api.Status(ctx)
	switch {
	case httpjson.IsNotFound(err):
		fmt.Fprintf(r.env.Stdout, "cluster: unknown, older than GET /status (%s)\n", where)
		return nil
	case err != nil:
		reason := dialFailure(err)
		switch {
		case ctx.Err() != nil && c.Context.Err() == nil:
			reason = fmt.Sprintf("no answer within %s", statusTimeout)
		case reason == "":
			reason = errorLine(err)
		}
		fmt.Fprintf(r.env.Stdout, "cluster: unreachable (%s: %s)\n", where, reason)
		return nil
	}
	fmt.Fprintf(r.env.Stdout, "cluster: %s (%s)\n", status.Version, where)
	return nil
}
