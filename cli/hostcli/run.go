package hostcli

import (
	"fmt"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/pkg/random"
	"github.com/openflynn/flynn/pkg/terminal"
)

func runCommand(env *Env) *cli.Command {
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
			stdio := client.AttachIO{Stdin: env.Stdin, Stdout: env.Stdout, Stderr: env.Stderr}
			if job.Config.TTY {
				// The size is the output terminal's, as in docker run:
				// that is where the job's screen is drawn.
				if out := env.Output; out != nil {
					if ws, ok := windowSize(out); ok {
						req.Height, req.Width = ws.Height, ws.Width
					}
					sizes, stop := watchSize(out)
					defer stop()
					stdio.Resize = sizes
				}
				// Keys go to the job as typed (Ctrl-C included), as in ssh.
				if in := env.Input; in != nil {
					restore, err := in.MakeRaw()
					if err != nil {
						return fmt.Errorf("terminal raw mode: %w", err)
					}
					defer func() { _ = restore() }()
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

// windowSize returns t's size as the host API takes it.
func windowSize(t terminal.Terminal) (client.WindowSize, bool) {
	h, w, err := t.Size()
	if err != nil || h < 0 || w < 0 || h > 0xffff || w > 0xffff {
		return client.WindowSize{}, false
	}
	return client.WindowSize{Height: uint16(h), Width: uint16(w)}, true
}

// watchSize sends t's size on sizes each time t is resized, for
// client.AttachIO.Resize, until stop, which waits for its goroutine and
// closes sizes. A size the attach has not taken yet gives way to a newer
// one.
func watchSize(t terminal.Terminal) (sizes <-chan client.WindowSize, stop func()) {
	resizes, stopResizes := t.Resizes()
	out := make(chan client.WindowSize, 1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-resizes:
				ws, ok := windowSize(t)
				if !ok {
					continue
				}
				select {
				case <-out:
				default:
				}
				// This goroutine is the only sender and the buffer has
				// room now: the send cannot block.
				out <- ws
			}
		}
	}()
	return out, func() {
		close(done)
		wg.Wait()
		stopResizes()
		close(out)
	}
}
