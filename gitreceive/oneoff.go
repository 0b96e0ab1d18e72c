package gitreceive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// PushMetaPhase is the metadata key that names what a one-off job a push
// runs of the pushed app is for: "release" (the Procfile's release
// command) or "postdeploy" (app.json's script).
const PushMetaPhase = "flynn.push.phase"

// jobError is the error a job's host reported instead of running it (an
// error frame on the attach stream).
type jobError struct{ msg string }

func (e *jobError) Error() string { return e.msg }

// relayJob passes an attached job's output on, stdout and stderr a line at
// a time each, until the job exits, and returns its exit status (255 when
// it has none). It fails when the stream ends first: with a *jobError when
// the host reported one, else with the read's error.
func relayJob(job io.Reader, stdout, stderr *lineWriter) (int, error) {
	defer stderr.flush()
	defer stdout.flush()
	for {
		f, err := host.ReadFrame(job)
		if err != nil {
			return 0, err
		}
		switch f.Type {
		case host.FrameStdout:
			stdout.write(f.Payload)
		case host.FrameStderr:
			stderr.write(f.Payload)
		case host.FrameExit:
			status, _ := host.ParseExit(f.Payload)
			if status < 0 {
				status = 255
			}
			return status, nil
		case host.FrameError:
			return 0, &jobError{string(f.Payload)}
		}
	}
}

// runOneOff runs args as a one-off job of rel, the release a push made of
// app, with nothing on its stdin and its output passed on to out, and
// returns its exit status. The job gets the release's env and the limits
// of the app's one-off jobs, and is stopped after ReleaseTimeout. The
// error, when it did not run to its end, is worded for the pusher.
func (b *builder) runOneOff(ctx context.Context, app *controller.App, rel *controller.Release, args []string, phase string, out io.Writer, log *slog.Logger) (int, error) {
	jobCtx, cancel := context.WithTimeout(ctx, b.cfg.ReleaseTimeout)
	defer cancel()
	timedOut := func() bool { return ctx.Err() == nil && jobCtx.Err() != nil }
	job, err := b.c.RunJobAttached(jobCtx, app.ID, &controller.NewJob{
		ReleaseID: rel.ID,
		Args:      args,
		Meta:      map[string]string{PushMetaPhase: phase},
	})
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case timedOut():
			return 0, fmt.Errorf("not started after %s", b.cfg.ReleaseTimeout)
		}
		log.Error("push: start the "+phase+" job", "err", err)
		var apiErr *httpjson.Error
		if httpjson.IsCode(err, httpjson.CodeValidation) && errors.As(err, &apiErr) {
			return 0, fmt.Errorf("could not start it: %s", apiErr.Message)
		}
		return 0, errors.New("could not start it (see gitreceive's log)")
	}
	defer job.Close()
	stop := context.AfterFunc(jobCtx, func() { job.Close() })
	defer stop()
	log = log.With("job", job.JobID, "phase", phase)
	log.Info("push job started")
	// A command that reads its input gets its end at once rather than
	// waiting for the timeout.
	_ = (&frameWriter{w: job}).write(host.FrameStdinEOF, nil)
	status, err := relayJob(job, &lineWriter{out: out}, &lineWriter{out: out})
	if err != nil {
		var je *jobError
		switch {
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case timedOut():
			log.Info("push job timed out", "after", b.cfg.ReleaseTimeout)
			return 0, fmt.Errorf("not finished after %s", b.cfg.ReleaseTimeout)
		case errors.As(err, &je):
			log.Error("push job error", "err", je.msg)
			return 0, je
		}
		log.Error("push job stream broke", "err", err)
		return 0, errors.New("lost the connection to the job")
	}
	log.Info("push job exited", "status", status)
	return status, nil
}
