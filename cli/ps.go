package cli

import (
	"fmt"

	urfave "github.com/urfave/cli/v2"
)

func (r *runner) psCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "ps",
		Usage: "list an app's jobs",
		Description: `Lists the jobs that are pending, starting, up or stopping; --all adds the
ones that ended. CPU is a running job's recent CPU use in percent of one CPU,
MEM the memory it uses (and its limit when it has one), as its host reads
them; "-" when the host did not answer within a few seconds.

Example:
   flynn -a example ps`,
		Flags: []urfave.Flag{
			appFlag(),
			jsonFlag(),
			&urfave.BoolFlag{Name: "all", Usage: "include jobs that ended"},
		},
		Action: r.ps,
	}
}

func (r *runner) ps(c *urfave.Context) error {
	name, api, err := r.appAPI(c)
	if err != nil {
		return err
	}
	shown, err := api.JobsWithStats(c.Context, name, !c.Bool("all"))
	if err != nil {
		return err
	}
	if lookupBool(c, "json") {
		return writeJSON(r.env.Stdout, shown)
	}
	releases, err := api.AppReleases(c.Context, name)
	if err != nil {
		return err
	}
	versions := make(map[string]int, len(releases))
	for _, rel := range releases {
		versions[rel.ID] = rel.Version
	}
	return renderJobs(r.env.Stdout, r.env.Now(), shown, versions)
}

func (r *runner) killCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "kill",
		Usage:     "stop a job",
		ArgsUsage: "JOB",
		Description: `Stops a job; the scheduler starts another in its place when the formation
still wants it.

Example:
   flynn -a example kill host1-1b4e28ba-2fa1-11d2-883f-0016d3cca427`,
		Flags:  append([]urfave.Flag{appFlag()}, systemFlags()...),
		Action: r.kill,
	}
}

func (r *runner) kill(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want JOB")
	}
	api, app, err := r.changeApp(c)
	if err != nil {
		return err
	}
	job := c.Args().First()
	if err := api.StopJob(c.Context, app.ID, job); err != nil {
		return err
	}
	fmt.Fprintf(r.env.Stdout, "Job %s stopped.\n", job)
	return nil
}
