package hostcli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/cmdline"
)

func gcCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "gc",
		Usage: "remove exited job containers and unused images now",
		Description: `Runs the host's garbage collector once, as the daemon does every
--gc-interval: it removes the exited job containers beyond the most recent
--keep-exited, and the images it manages (platform builds, loaded image
archives, unsaved builds) that nothing uses, and prints what went. With
--dry-run it removes nothing and prints what would go; --all lists what
stays too, with why.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "remove nothing; print what would be removed"},
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "list what is kept too, with the reason"},
		},
		Action: func(c *cli.Context) error {
			rep, err := hostClient(c).CollectGarbage(c.Context, c.Bool("dry-run"))
			if err != nil {
				return err
			}
			return writeGC(env.Stdout, rep, c.Bool("all"), env.Now())
		},
	}
}

// writeGC prints a garbage collection's report: a table of containers and
// one of images (only what goes, unless all), then what it came to.
func writeGC(w io.Writer, rep *host.GCReport, all bool, now time.Time) error {
	action := func(remove bool, errMsg string) string {
		switch {
		case errMsg != "":
			return "failed"
		case !remove:
			return "keep"
		case rep.DryRun:
			return "would remove"
		}
		return "removed"
	}
	reason := func(reason, errMsg string) string {
		if errMsg != "" {
			return errMsg
		}
		return reason
	}
	var containers, images, failed int
	var containerRows, imageRows []string
	for _, c := range rep.Containers {
		if !c.Remove && !all {
			continue
		}
		if c.Remove && c.Error == "" {
			containers++
		}
		if c.Error != "" {
			failed++
		}
		containerRows = append(containerRows, fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", shortID(c.ID), c.JobID, orDash(c.App),
			ago(now, c.ExitedAt), action(c.Remove, c.Error), reason(c.Reason, c.Error)))
	}
	for _, img := range rep.Images {
		if !img.Remove && !all {
			continue
		}
		if img.Remove && img.Error == "" {
			images++
		}
		if img.Error != "" {
			failed++
		}
		imageRows = append(imageRows, fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", orDash(strings.Join(img.Refs, ",")), shortID(img.ID),
			cmdline.RoundSize(uint64(max(img.Size, 0))), ago(now, img.CreatedAt), action(img.Remove, img.Error), reason(img.Reason, img.Error)))
	}
	// A table is printed only when it has rows: an empty one says nothing.
	for _, table := range []struct {
		header string
		rows   []string
	}{
		{"CONTAINER\tJOB\tAPP\tEXITED\tACTION\tREASON", containerRows},
		{"IMAGE\tID\tSIZE\tCREATED\tACTION\tREASON", imageRows},
	} {
		if len(table.rows) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, table.header)
		for _, r := range table.rows {
			fmt.Fprintln(tw, r)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	verb := "removed"
	if rep.DryRun {
		verb = "would remove"
	}
	if containers+images+failed == 0 {
		fmt.Fprintf(w, "nothing to remove: %d exited containers and %d images kept", len(rep.Containers), len(rep.Images))
		if !all {
			fmt.Fprint(w, " (--all lists them, with why)")
		}
		fmt.Fprintln(w)
		return nil
	}
	fmt.Fprintf(w, "%s %d containers and %d images, up to %s of images (layers other images share stay)\n",
		verb, containers, images, cmdline.RoundSize(uint64(max(rep.ImageBytes, 0))))
	if failed > 0 {
		fmt.Fprintf(w, "%d removals failed\n", failed)
	}
	return nil
}

// ago is how long before now t was, to the second; "-" for no time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortID is a container or image id as Docker prints it: 12 hex digits.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
