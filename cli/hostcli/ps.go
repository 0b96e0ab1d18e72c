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
	"github.com/openflynn/flynn/pkg/cmdline"
)

func psCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "ps",
		Usage: "list jobs",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "include finished jobs"}},
		Action: func(c *cli.Context) error {
			jobs, err := hostClient(c).ListJobsWithStats(c.Context)
			if err != nil {
				return err
			}
			return writeJobs(env.Stdout, jobs, c.Bool("all"), env.Now())
		},
	}
}

// writeJobs prints the job table; CPU and MEM are "-" for a job without
// stats (one that does not run, or whose stats the host could not read).
func writeJobs(w io.Writer, jobs []*host.ActiveJob, all bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tSTARTED\tCPU\tMEM\tPORTS\tIMAGE\tCOMMAND")
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
		cpu, mem := JobUsage(j.Stats)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.Job.ID, state, started, cpu, mem, strings.Join(ports, ","), j.Job.Artifact, strings.Join(j.Job.Config.Args, " "))
	}
	return tw.Flush()
}

// JobUsage is a job's CPU ("12.5%") and memory ("45.2MiB", with its limit
// when it has one: "45.2MiB/256MiB"), or "-" for both without stats, as
// flynn-host ps and flynn ps show them.
func JobUsage(s *host.JobStats) (cpu, mem string) {
	if s == nil {
		return "-", "-"
	}
	mem = cmdline.RoundSize(s.MemoryBytes)
	if s.MemoryLimitBytes > 0 {
		mem += "/" + cmdline.RoundSize(s.MemoryLimitBytes)
	}
	return strconv.FormatFloat(s.CPUPercent, 'f', 1, 64) + "%", mem
}
