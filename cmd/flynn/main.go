// Command flynn is the Flynn command-line tool. It gathers its
// surroundings (home, working directory, terminal, $FLYNN_CLUSTER,
// $FLYNN_CLUSTER_KEY, $FLYNN_APP, $BROWSER) and runs package cli, which
// holds every command.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/openflynn/flynn/cli"
	"github.com/openflynn/flynn/pkg/terminal"
	"github.com/openflynn/flynn/pkg/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	home, _ := os.UserHomeDir()
	dir, _ := os.Getwd()
	configPath := os.Getenv("FLYNNRC")
	if configPath == "" {
		configPath = filepath.Join(home, ".flynnrc")
	}
	env := &cli.Env{
		ConfigPath: configPath,
		Home:       home,
		Dir:        dir,
		Cluster:    os.Getenv("FLYNN_CLUSTER"),
		ClusterKey: os.Getenv("FLYNN_CLUSTER_KEY"),
		App:        os.Getenv("FLYNN_APP"),
		Browser:    os.Getenv("BROWSER"),
		Version:    version.String(),
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
	}
	// A nil *terminal.TTY must stay a nil interface.
	if t := terminal.New(os.Stdin); t != nil {
		env.Terminal = t
	}
	code := cli.Run(ctx, os.Args, env)
	stop()
	os.Exit(code)
}
