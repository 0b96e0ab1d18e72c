package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// AttachSession is a client's connection to a job's stdio. Read Stdout and
// Stderr until they end (the job's output is over), then Wait for the exit
// status; Close always.
type AttachSession struct {
	// Stdin is nil unless the client asked for stdin.
	Stdin io.WriteCloser
	// Stdout and Stderr end when the job's output ends.
	Stdout, Stderr io.Reader

	d       *Daemon
	j       *job
	tty     bool
	cid     string
	outR    *io.PipeReader
	errR    *io.PipeReader
	detach  func()
	copying chan struct{} // closed when the backend's output copy ended
	once    sync.Once
}

// Attach connects to a job's stdio. With req.Job it creates the job,
// attaches, and only then starts it, so no output is missed; such a job
// belongs to the session and is stopped when the session closes early.
func (d *Daemon) Attach(ctx context.Context, req *host.AttachRequest) (*AttachSession, error) {
	attacher, ok := d.backend.(Attacher)
	if !ok {
		return nil, httpjson.Errorf(httpjson.CodeValidation, "this host's runtime cannot attach to jobs")
	}
	var (
		j   *job
		err error
	)
	switch {
	case req.Job != nil && req.JobID != "":
		return nil, httpjson.ValidationError("job_id", "give either job_id or job, not both")
	case req.Job != nil:
		jb := cloneJob(req.Job)
		if req.Stdin {
			jb.Config.Stdin = true
		}
		if j, err = d.createJob(ctx, jb, true); err != nil {
			return nil, err
		}
	case req.JobID != "":
		d.mu.Lock()
		j = d.jobs[req.JobID]
		var state host.JobState
		if j != nil {
			state = j.active.State
		}
		d.mu.Unlock()
		if j == nil {
			return nil, httpjson.NotFound("job %s not found", req.JobID)
		}
		if state.Terminal() || state == host.StatePending {
			return nil, httpjson.Errorf(httpjson.CodeConflict, "job %s is %s", req.JobID, state)
		}
	default:
		return nil, httpjson.ValidationError("job_id", "job_id or job is required")
	}
	d.mu.Lock()
	cid, cfg := j.active.ContainerID, j.active.Job.Config
	d.mu.Unlock()
	if req.Stdin && !cfg.Stdin {
		return nil, httpjson.ValidationError("stdin", "job %s was not started with stdin", j.id)
	}

	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	stdin, done, detach, err := attacher.Attach(ctx, cid, req.Stdin, cfg.TTY, outW, errW)
	if err != nil {
		if req.Job != nil {
			d.discard(j)
		}
		return nil, fmt.Errorf("attach to job %s: %w", j.id, err)
	}
	s := &AttachSession{
		Stdin: stdin, Stdout: outR, Stderr: errR,
		d: d, j: j, tty: cfg.TTY, cid: cid, outR: outR, errR: errR, detach: detach,
		copying: make(chan struct{}),
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer close(s.copying)
		var err error
		select {
		case err = <-done:
		case <-d.closing:
			detach()
			err = <-done
		}
		if err == nil {
			err = io.EOF
		}
		outW.CloseWithError(err)
		errW.CloseWithError(err)
	}()
	if req.Job != nil {
		if err := d.startJob(ctx, j); err != nil {
			s.closeStreams()
			return nil, err
		}
	}
	if cfg.TTY && req.Height > 0 && req.Width > 0 {
		_ = s.Resize(ctx, req.Height, req.Width)
	}
	return s, nil
}

// discard removes a created, never started job.
func (d *Daemon) discard(j *job) {
	d.mu.Lock()
	cid := j.active.ContainerID
	delete(d.jobs, j.id)
	d.mu.Unlock()
	d.removeContainer(cid)
	if j.log != nil {
		_ = j.log.Remove()
	}
	d.ports.Release(j.id)
}

// JobID returns the attached job's id.
func (s *AttachSession) JobID() string { return s.j.id }

// Resize sets the job's terminal size (TTY jobs only).
func (s *AttachSession) Resize(ctx context.Context, height, width uint16) error {
	if !s.tty {
		return errors.New("job has no terminal")
	}
	return s.d.backend.(Attacher).Resize(ctx, s.cid, height, width)
}

// Wait waits for the job to end and returns its exit status.
func (s *AttachSession) Wait(ctx context.Context) (int, error) {
	select {
	case <-s.j.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	a, err := s.d.Job(s.j.id)
	if err != nil {
		return 0, err
	}
	if a.ExitStatus == nil {
		return 0, fmt.Errorf("job %s %s: %s", a.Job.ID, a.State, a.Error)
	}
	return *a.ExitStatus, nil
}

func (s *AttachSession) closeStreams() {
	s.once.Do(func() {
		s.detach()
		s.outR.CloseWithError(io.ErrClosedPipe)
		s.errR.CloseWithError(io.ErrClosedPipe)
		<-s.copying
	})
}

// Close detaches. A job the session created is stopped if it still runs,
// since nobody is left to talk to it.
func (s *AttachSession) Close() {
	s.closeStreams()
	if s.j.ownedByAttach {
		_ = s.d.beginStop(s.j)
	}
}
