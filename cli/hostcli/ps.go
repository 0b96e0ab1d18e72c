package hostcli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/host"
)

func psCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "ps",
		Usage: "list jobs",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "include finished jobs"}},
		Action: func(c *cli.Context) error {
			jobs, err := hostClient(c).ListJobs(c.Context)
			if err != nil {
				return err
			}
			return writeJobs(env.Stdout, jobs, c.Bool("all"), env.Now())
		},
	}
}

// writeJobs prints the job table.
func writeJobs(w io.Writer, jobs []*host.ActiveJob, all bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tSTARTED\tPORTS\tIMAGE\tCOMMAND")
	for _, j := range jobs {
		if !all && j.State.Terminal() {
			continue
		}
		state := string(j.State)
		if j.ExitStatus != nil {
			state += " (" + strconv.Itoa(*j.ExitStatus) + ")"
		}
		started := "-"
		if !j.StartedAt.IsZero() {
			started = now.Sub(j.StartedAt).Round(time.Second).String() + " ago"
		}
		var ports []string
		for _, p := range j.Job.Config.Ports {
			ports = append(ports, strconv.Itoa(p.Port))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", j.Job.ID, state, started, strings.Join(ports, ","), j.Job.Artifact, strings.Join(j.Job.Config.Args, " "))
	}
	return tw.Flush()
}
