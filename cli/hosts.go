package cli

import (
	urfave "github.com/urfave/cli/v2"
)

func (r *runner) hostsCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "hosts",
		Usage: "list the cluster's nodes",
		Description: `Lists every node registered in the cluster: its host id, its address, and
whether its flynn-host answers (up, with its count of jobs that have not
ended) or not (unreachable: the node or its flynn-host is down, and its
registration has not expired yet). --json adds why a node is unreachable.

Example:
   flynn hosts`,
		Flags: []urfave.Flag{jsonFlag()},
		Action: func(c *urfave.Context) error {
			api, err := r.connect(c)
			if err != nil {
				return err
			}
			hosts, err := api.Hosts(c.Context)
			if err != nil {
				return err
			}
			if lookupBool(c, "json") {
				return writeJSON(r.env.Stdout, hosts)
			}
			return renderHosts(r.env.Stdout, hosts)
		},
	}
}
