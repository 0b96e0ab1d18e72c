package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/pkg/random"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a one-off job with its output attached; exits with its status",
		ArgsUsage: "IMAGE [CMD...]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "give the job a terminal"},
			&cli.BoolFlag{Name: "stdin", Aliases: []string{"i"}, Value: true, Usage: "send stdin to the job"},
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "KEY=value"},
			&cli.StringFlag{Name: "entrypoint", Usage: "replace the image's entrypoint"},
			&cli.IntFlag{Name: "ports", Usage: "number of ports to allocate ($PORT, $PORT_1…)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return fmt.Errorf("usage: flynn-host run IMAGE [CMD...]")
			}
			hc := hostClient(c)
			st, err := hc.Status(c.Context)
			if err != nil {
				return err
			}
			job := &host.Job{
				ID:       st.ID + "-" + random.UUID(),
				Artifact: c.Args().First(),
				Config:   host.JobConfig{Args: c.Args().Tail(), TTY: c.Bool("tty"), Env: map[string]string{}},
			}
			if ep := c.String("entrypoint"); ep != "" {
				job.Config.Entrypoint = []string{ep}
			}
			for _, kv := range c.StringSlice("env") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--env %q: want KEY=value", kv)
				}
				job.Config.Env[k] = v
			}
			for range c.Int("ports") {
				job.Config.Ports = append(job.Config.Ports, host.Port{})
			}
			req := &host.AttachRequest{Job: job, Stdin: c.Bool("stdin")}
			stdio := client.AttachIO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
			if job.Config.TTY {
				if ws, err := unix.IoctlGetWinsize(int(os.Stdout.Fd()), unix.TIOCGWINSZ); err == nil {
					req.Height, req.Width = ws.Row, ws.Col
				}
				resize := make(chan client.WindowSize, 1)
				ctx, cancel := context.WithCancel(c.Context)
				defer cancel()
				go watchWinch(ctx, resize)
				stdio.Resize = resize
				// Keys go to the job as typed (Ctrl-C included), as in ssh.
				if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
					state, err := term.MakeRaw(fd)
					if err != nil {
						return fmt.Errorf("terminal raw mode: %w", err)
					}
					defer func() { _ = term.Restore(fd, state) }()
				}
			}
			status, err := hc.Attach(c.Context, req, stdio)
			if err != nil {
				return err
			}
			if status != 0 {
				return exitCode(status)
			}
			return nil
		},
	}
}

// watchWinch sends the terminal's size on every SIGWINCH until ctx ends.
func watchWinch(ctx context.Context, out chan<- client.WindowSize) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGWINCH)
	defer signal.Stop(sig)
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			if ws, err := unix.IoctlGetWinsize(int(os.Stdout.Fd()), unix.TIOCGWINSZ); err == nil {
				select {
				case out <- client.WindowSize{Height: ws.Row, Width: ws.Col}:
				default:
				}
			}
		}
	}
}
