package cli

import (
	"fmt"
	"io"
	"strconv"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
)

// drainCommands are `flynn log drain …`: where the cluster's log
// aggregator sends an app's log lines (controller.LogDrain).
func (r *runner) drainCommands() []*urfave.Command {
	return []*urfave.Command{{
		Name:  "drain",
		Usage: "send the app's log to a syslog server or an HTTPS endpoint",
		Description: `Without a subcommand, lists the app's log drains. A drain gets every
line of the app's log, as RFC 5424 syslog messages: its jobs' output and
the router's request lines. Its URL says where and how:

   syslog+tls://HOST:PORT   syslog over TLS (the server's certificate is checked)
   syslog+tcp://HOST:PORT   syslog over plain TCP (Heroku's syslog://)
   https://HOST/PATH        batches POSTed as Heroku's logplex does
                            (user:password@ in the URL goes as basic auth)

While a drain's receiver is down or slow, its lines wait in a buffer, the
newest 10,000 of them; the lines it drops are counted and told in the
app's log.

Example:
   flynn log drain add syslog+tls://logs.example.com:6514
   flynn log drain list`,
		Flags:  []urfave.Flag{appFlag(), jsonFlag()},
		Action: r.drainList,
		Subcommands: []*urfave.Command{
			{
				Name:        "add",
				Usage:       "send the app's log to URL",
				ArgsUsage:   "URL",
				Description: "Example:\n   flynn -a example log drain add https://user:secret@logs.example.com/flynn",
				Flags:       append([]urfave.Flag{appFlag()}, systemFlags()...),
				Action:      r.drainAdd,
			},
			{
				Name:        "list",
				Usage:       "list the app's log drains",
				Description: "Example:\n   flynn -a example log drain list --json",
				Flags:       []urfave.Flag{appFlag(), jsonFlag()},
				Action:      r.drainList,
			},
			{
				Name:        "remove",
				Usage:       "stop sending the app's log to a drain",
				ArgsUsage:   "ID",
				Description: "Example:\n   flynn -a example log drain remove 7f9c24e5-…",
				Flags:       append([]urfave.Flag{appFlag()}, systemFlags()...),
				Action:      r.drainRemove,
			},
		},
	}}
}

func (r *runner) drainAdd(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want the drain's URL")
	}
	api, app, err := r.changeApp(c)
	if err != nil {
		return err
	}
	d, err := api.CreateLogDrain(c.Context, app.ID, c.Args().First())
	if err != nil {
		return err
	}
	fmt.Fprintf(r.env.Stdout, "Created log drain %s: %s's log goes to %s\n", d.ID, app.Name, d.URL)
	return nil
}

func (r *runner) drainList(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "unknown subcommand %q", c.Args().First())
	}
	name, api, err := r.appAPI(c)
	if err != nil {
		return err
	}
	drains, err := api.AppLogDrains(c.Context, name)
	if err != nil {
		return err
	}
	if lookupBool(c, "json") {
		return writeJSON(r.env.Stdout, drains)
	}
	return renderDrains(r.env.Stdout, r.env.Now(), drains)
}

func (r *runner) drainRemove(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want a drain ID")
	}
	api, app, err := r.changeApp(c)
	if err != nil {
		return err
	}
	if _, err := api.DeleteLogDrain(c.Context, app.ID, c.Args().First()); err != nil {
		return err
	}
	fmt.Fprintf(r.env.Stdout, "Log drain %s removed.\n", c.Args().First())
	return nil
}

// renderDrains draws an app's drains. What each has sent, dropped and
// last failed with shows when the controller could tell for some drain
// (from the log aggregator); "?" marks one it could not tell of.
func renderDrains(w io.Writer, now time.Time, drains []*controller.LogDrain) error {
	withStats := false
	for _, d := range drains {
		withStats = withStats || d.Stats != nil
	}
	header := []string{"ID", "URL", "ADDED"}
	if withStats {
		header = append(header, "SENT", "DROPPED", "LAST ERROR")
	}
	t := newTable(w, header...)
	for _, d := range drains {
		row := []string{d.ID, d.URL, age(now, d.CreatedAt)}
		switch st := d.Stats; {
		case !withStats:
		case st == nil:
			row = append(row, "?", "?", "?")
		default:
			lastErr := "-"
			if st.LastError != "" {
				lastErr = age(now, st.LastErrorAt) + " ago: " + st.LastError
			}
			row = append(row, strconv.FormatUint(st.Sent, 10), strconv.FormatUint(st.Dropped, 10), lastErr)
		}
		t.row(row...)
	}
	return t.flush()
}
