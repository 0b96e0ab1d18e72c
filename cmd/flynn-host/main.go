// Command flynn-host is the layer-0 node daemon (`flynn-host daemon`) and
// the operator's tool to look at and drive the jobs of one host.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/host/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := &cli.App{
		Name:  "flynn-host",
		Usage: "run and inspect Flynn jobs on this host",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "host", Value: "http://127.0.0.1:1113", EnvVars: []string{"FLYNN_HOST_URL"}, Usage: "host API URL"},
			&cli.StringFlag{Name: "key", EnvVars: []string{"FLYNN_CLUSTER_KEY"}, Usage: "cluster key"},
		},
		Commands: []*cli.Command{
			daemonCommand(),
			psCommand(),
			inspectCommand(),
			logCommand(),
			stopCommand(),
			runCommand(),
			bootstrapCommand(),
		},
	}
	if err := app.RunContext(ctx, os.Args); err != nil {
		if code, ok := err.(exitCode); ok {
			os.Exit(int(code))
		}
		fmt.Fprintln(os.Stderr, "flynn-host:", err)
		os.Exit(1)
	}
}

// exitCode makes the process exit with a job's status (`run`).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func hostClient(c *cli.Context) *client.Client {
	return client.New(c.String("host"), c.String("key"))
}
