package cli

import (
	"fmt"
	"strings"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/stacks"
)

// stackRow is a stack as `flynn stack --json` lists it.
type stackRow struct {
	Name     string `json:"name"`
	Debian   string `json:"debian"`
	Python   string `json:"python"`
	Node     string `json:"node"`
	Default  bool   `json:"default,omitempty"`
	Selected bool   `json:"selected,omitempty"`
}

func (r *runner) stackCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "stack",
		Usage: "show or select the stack an app builds and runs on",
		Description: `A stack is a Debian release with its Python and Node.js, as a build
image and a run image. Without a subcommand, lists the stacks and marks the
app's with *. An app that selected none builds on the default stack, unless
a push asks for a Python (.python-version, runtime.txt) or Node.js
(package.json engines.node) version that only another stack has: that push
builds on it and says so. A selected stack is used from the next push on.

Example:
   flynn stack
   flynn stack set flynn-trixie && git commit --allow-empty -m rebuild && git push flynn main
   flynn stack set default`,
		Flags:  []urfave.Flag{appFlag(), jsonFlag()},
		Action: r.stackList,
		Subcommands: []*urfave.Command{{
			Name:        "set",
			Usage:       "select the app's stack (\"default\": none, the default)",
			ArgsUsage:   "STACK",
			Description: "Example:\n   flynn stack set flynn-trixie",
			Flags:       append([]urfave.Flag{appFlag()}, systemFlags()...),
			Action:      r.stackSet,
		}},
	}
}

func (r *runner) stackList(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "unknown subcommand %q", c.Args().First())
	}
	selected := ""
	if _, err := r.appName(c); err == nil {
		_, app, err := r.app(c)
		if err != nil {
			return err
		}
		selected = app.Stack
	}
	var rows []stackRow
	for _, st := range stacks.All() {
		rows = append(rows, stackRow{Name: st.Name, Debian: st.Debian, Python: st.Python, Node: st.Node,
			Default: st.Name == stacks.Default, Selected: st.Name == selected})
	}
	if lookupBool(c, "json") {
		return writeJSON(r.env.Stdout, rows)
	}
	t := newTable(r.env.Stdout, "", "STACK", "DEBIAN", "PYTHON", "NODE.JS", "")
	for _, row := range rows {
		mark, note := "", ""
		if row.Selected {
			mark = "*"
		}
		if row.Default {
			note = "default"
		}
		t.row(mark, row.Name, row.Debian, row.Python, row.Node, note)
	}
	return t.flush()
}

func (r *runner) stackSet(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want one stack")
	}
	name := c.Args().First()
	if name == "default" {
		name = ""
	} else if _, ok := stacks.Lookup(name); !ok {
		return fmt.Errorf("unknown stack %q (the stacks are %s)", name, strings.Join(stacks.Names(), ", "))
	}
	api, app, err := r.changeApp(c)
	if err != nil {
		return err
	}
	if _, err := api.UpdateApp(c.Context, app.ID, controller.AppUpdate{Stack: &name}); err != nil {
		return err
	}
	if name == "" {
		fmt.Fprintf(r.env.Stdout, "%s builds on the default stack (%s) from its next push on, or on the one its versions need\n", app.Name, stacks.Default)
		return nil
	}
	fmt.Fprintf(r.env.Stdout, "%s builds on %s from its next push on\n", app.Name, name)
	return nil
}
