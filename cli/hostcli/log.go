package hostcli

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/client"
)

func logCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:      "log",
		Usage:     "print a job's output (stdout to stdout, stderr to stderr)",
		ArgsUsage: "JOB",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing until the job ends"},
			&cli.IntFlag{Name: "tail", Aliases: []string{"n"}, Usage: "only the last N lines"},
			&cli.StringFlag{Name: "stream", Usage: "stdout or stderr only"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("usage: flynn-host log [-f] JOB")
			}
			s, err := hostClient(c).Log(c.Context, c.Args().First(), client.LogOptions{
				Follow: c.Bool("follow"), Tail: c.Int("tail"), Stream: c.String("stream"),
			})
			if err != nil {
				return err
			}
			defer s.Close()
			for {
				l, err := s.Next()
				if errors.Is(err, io.EOF) || c.Context.Err() != nil {
					return nil
				}
				if err != nil {
					return err
				}
				w := env.Stdout
				if l.Stream == host.StreamStderr {
					w = env.Stderr
				}
				_, _ = io.WriteString(w, l.Data)
			}
		},
	}
}
