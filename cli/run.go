package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/terminal"
)

func (r *runner) runCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "run",
		Usage:     "run a one-off command in an app's release",
		ArgsUsage: "CMD [ARG…]",
		Description: `Runs CMD as a one-off job of the app, attached to your terminal: your input
goes to it, its output comes back, and its exit status is flynn's. When
stdin is a terminal the job gets a TTY. -d starts it detached and prints
its id. Put flags for flynn before CMD.

Example:
   flynn -a example run bash
   flynn run -d -e RAILS_ENV=production rake db:migrate`,
		Flags: append([]urfave.Flag{
			appFlag(),
			&urfave.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "start the job and return its id"},
			&urfave.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "add `K=V` to the job's environment (repeatable)"},
			&urfave.StringFlag{Name: "release", Aliases: []string{"r"}, Usage: "run in this release `ID` (default: the current one)"},
			&urfave.BoolFlag{Name: "no-tty", Aliases: []string{"T"}, Usage: "no TTY even when stdin is a terminal"},
		}, systemFlags()...),
		Action: r.run,
	}
}

func (r *runner) run(c *urfave.Context) error {
	if c.NArg() == 0 {
		return usageError(c, "want a CMD to run")
	}
	req := &controller.NewJob{Args: c.Args().Slice(), ReleaseID: c.String("release")}
	for _, kv := range c.StringSlice("env") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError(c, "%q is not K=V", kv)
		}
		if req.Env == nil {
			req.Env = map[string]string{}
		}
		req.Env[k] = v
	}
	api, app, err := r.changeApp(c)
	if err != nil {
		return err
	}
	name := app.ID
	if c.Bool("detach") {
		job, err := api.RunJob(c.Context, name, req)
		if err != nil {
			return err
		}
		fmt.Fprintln(r.env.Stdout, job.ID)
		return nil
	}
	tty := r.env.Terminal
	if c.Bool("no-tty") {
		tty = nil
	}
	status, err := runAttached(c.Context, api, name, req, tty, r.env.Stdin, r.env.Stdout, r.env.Stderr)
	if err != nil {
		return err
	}
	if status != 0 {
		return &exitStatusError{status: exitCode(status)}
	}
	return nil
}

// runAttached runs req as a one-off job of app attached to stdin, stdout
// and stderr, and returns its exit status. With a terminal (tty not nil)
// the job gets a TTY: the terminal is put in raw mode, and its size is
// sent and followed. Without one, the job's stdout and stderr stay apart,
// byte for byte. ctx ending detaches.
func runAttached(ctx context.Context, api *client.Client, app string, req *controller.NewJob, tty terminal.Terminal, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	req.TTY = tty != nil
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	job, err := api.RunJobAttached(ctx, app, req)
	if err != nil {
		return 0, err
	}
	defer job.Close()
	fw := &frameWriter{w: job}
	if tty != nil {
		restore, err := tty.MakeRaw()
		if err != nil {
			return 0, fmt.Errorf("terminal: %w", err)
		}
		defer restore()
		sendSize(fw, tty)
		resizes, stop := tty.Resizes()
		defer stop()
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel() // runs before wg.Wait: ends the resize loop
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-resizes:
					sendSize(fw, tty)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	status, err := attach(job, fw, stdin, stdout, stderr)
	if err != nil {
		if parent.Err() != nil {
			return 0, fmt.Errorf("interrupted; detached from job %s, which may still run (flynn kill %s)", job.JobID, job.JobID)
		}
		return 0, fmt.Errorf("job %s: %w", job.JobID, err)
	}
	return status, nil
}

// exitCode maps a job's exit status to one a process can exit with.
func exitCode(status int) int {
	if status < 0 || status > 255 {
		return 1
	}
	return status
}

func sendSize(fw *frameWriter, t terminal.Terminal) {
	h, w, err := t.Size()
	if err != nil || h <= 0 || w <= 0 {
		return
	}
	_ = fw.write(host.FrameResize, host.ResizePayload(uint16(h), uint16(w)))
}

// frameWriter serialises the frames the input copy and resizes send.
type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *frameWriter) write(t host.FrameType, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return host.WriteFrame(f.w, t, p)
}

// attach speaks the attach protocol on stream until the job exits: stdin
// goes out as Stdin frames (then StdinEOF), Stdout and Stderr frames go to
// stdout and stderr, and the Exit frame's status is returned.
//
// The input copy runs in its own goroutine, which attach does not wait
// for: a read of the user's terminal cannot be interrupted, so it ends at
// the next input or with the process. Closing stream makes its next write
// fail.
func attach(stream io.Reader, fw *frameWriter, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := stdin.Read(buf)
			if n > 0 {
				if werr := fw.write(host.FrameStdin, buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				_ = fw.write(host.FrameStdinEOF, nil)
				return
			}
		}
	}()
	for {
		f, err := host.ReadFrame(stream)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, errors.New("the connection closed before the job exited")
			}
			return 0, fmt.Errorf("read attach stream: %w", err)
		}
		switch f.Type {
		case host.FrameStdout:
			if _, err := stdout.Write(f.Payload); err != nil {
				return 0, fmt.Errorf("write output: %w", err)
			}
		case host.FrameStderr:
			if _, err := stderr.Write(f.Payload); err != nil {
				return 0, fmt.Errorf("write output: %w", err)
			}
		case host.FrameExit:
			return host.ParseExit(f.Payload)
		case host.FrameError:
			return 0, errors.New(string(f.Payload))
		}
	}
}
