package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/hostjob"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/halfclose"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// JobRunner places one-off jobs on hosts through the host API. The
// controller records the job the runner reports.
type JobRunner interface {
	// RunJob starts spec on some host and returns the job, with its id
	// ("<hostID>-<uuid>"), host and state filled in.
	RunJob(ctx context.Context, spec *JobSpec) (*controller.Job, error)
	// RunAttached is RunJob for a job whose stdin, stdout and stderr stay
	// with the caller: it returns the host's attach stream, which the
	// controller passes to the client byte for byte. The job must not start
	// before it is attached, so no output is lost. Closing the stream
	// detaches.
	RunAttached(ctx context.Context, spec *JobSpec) (*controller.Job, io.ReadWriteCloser, error)
}

// JobSpec is everything a host needs to run a one-off job.
type JobSpec struct {
	// Job has AppID, ReleaseID, Type, Args and Meta set; the runner sets
	// the rest.
	Job *controller.Job
	// Artifact is the release's, or the one the request named.
	Artifact *controller.Artifact
	// Entrypoint replaces the artifact's entrypoint when set.
	Entrypoint []string
	// Env is the release's env, then the process type's, then the
	// request's.
	Env map[string]string
	// Process is the process type the job takes its settings from (zero
	// for a plain command).
	Process controller.ProcessType
	TTY     bool
	// AppName and ReleaseVersion name the app and release for the job's
	// metadata, as a formation job carries them.
	AppName        string
	ReleaseVersion int
	// System marks a system app's job, which gets nothing of BuildEnv.
	System bool
	// BuildEnv is the cluster's build settings as they were when the
	// job was asked for; the job gets them under Env (see
	// controller/hostjob). nil: none.
	BuildEnv *controller.BuildEnv
}

// listJobs lists an app's jobs; ?active=true leaves out the jobs that
// ended (down, crashed or failed), ?stats=true adds each running job's
// CPU and memory use from its host (see fillJobStats).
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	app, err := s.store.Apps.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	p, err := page(r)
	if err != nil {
		return err
	}
	active, withStats := false, false
	if v := r.URL.Query().Get("active"); v != "" {
		if active, err = strconv.ParseBool(v); err != nil {
			return httpjson.ValidationError("active", "must be true or false")
		}
	}
	if v := r.URL.Query().Get("stats"); v != "" {
		if withStats, err = strconv.ParseBool(v); err != nil {
			return httpjson.ValidationError("stats", "must be true or false")
		}
	}
	list, next, err := s.store.Jobs.List(r.Context(), app.ID, active, p)
	if err != nil {
		return err
	}
	if withStats {
		s.fillJobStats(r.Context(), list)
	}
	writePage(w, r, p, list, next)
	return nil
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	j, err := s.store.Jobs.Get(r.Context(), ps.ByName("id"), ps.ByName("job_id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, j)
	return nil
}

// putJob records a job state the scheduler saw.
func (s *Server) putJob(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var j controller.Job
	if err := s.decode(w, r, "job", &j); err != nil {
		return err
	}
	id := ps.ByName("job_id")
	if j.ID != "" && j.ID != id {
		return httpjson.ValidationError("id", "does not match the job in the path")
	}
	appID := ps.ByName("id")
	if j.AppID != "" && j.AppID != appID {
		app, err := s.store.Apps.Get(r.Context(), appID)
		if err != nil {
			return err
		}
		if j.AppID != app.ID && j.AppID != app.Name {
			return httpjson.ValidationError("app", "does not match the app in the path")
		}
	}
	j.ID, j.AppID = id, appID
	if err := s.store.Jobs.Put(r.Context(), &j); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, &j)
	return nil
}

// runJob starts a one-off job; with `Upgrade: flynn-attach/0` it attaches
// to it and hands the connection over to the job's stream.
func (s *Server) runJob(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var req controller.NewJob
	if err := s.decode(w, r, "new_job", &req); err != nil {
		return err
	}
	if err := checkEnvNames("env", req.Env); err != nil {
		return err
	}
	attach := strings.EqualFold(r.Header.Get("Upgrade"), controller.AttachUpgrade)
	if r.Header.Get("Upgrade") != "" && !attach {
		return httpjson.ValidationError("Upgrade", "only %s is supported", controller.AttachUpgrade)
	}
	if s.opts.Runner == nil {
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: "this controller has no job runner configured", Retry: true}
	}
	spec, err := s.jobSpec(r.Context(), ps.ByName("id"), &req)
	if err != nil {
		return err
	}
	if err := checkOneOffRunnable(spec); err != nil {
		return err
	}
	if !attach {
		job, err := s.opts.Runner.RunJob(r.Context(), spec)
		if err != nil {
			return fmt.Errorf("run job: %w", err)
		}
		if err := s.recordJob(r.Context(), spec, job); err != nil {
			return err
		}
		s.logger.Info("one-off job started", "app.id", job.AppID, "job.id", job.ID, "host.id", job.HostID)
		httpjson.Write(w, http.StatusCreated, job)
		return nil
	}
	return s.runAttached(w, r, spec)
}

// jobSpec resolves a one-off job request against the app's release.
func (s *Server) jobSpec(ctx context.Context, appIDOrName string, req *controller.NewJob) (*JobSpec, error) {
	app, err := s.store.Apps.Get(ctx, appIDOrName)
	if err != nil {
		return nil, err
	}
	releaseID := req.ReleaseID
	if releaseID == "" {
		if app.ReleaseID == "" {
			return nil, httpjson.ValidationError("release", "app %s has no release; name one", app.Name)
		}
		releaseID = app.ReleaseID
	}
	rel, err := s.store.Releases.Get(ctx, releaseID)
	if errors.Is(err, postgres.ErrNotFound) || (err == nil && rel.AppID != app.ID) {
		return nil, httpjson.ValidationError("release", "release %q is not a release of app %s", releaseID, app.Name)
	}
	if err != nil {
		return nil, err
	}
	artifact, err := s.jobArtifact(ctx, rel, req.ArtifactID)
	if err != nil {
		return nil, err
	}
	var proc controller.ProcessType
	if req.Type != "" {
		var ok bool
		if proc, ok = rel.Processes[req.Type]; !ok {
			return nil, httpjson.ValidationError("type", "release %s has no process type %q", controller.ReleaseVersion(rel.Version), req.Type)
		}
	}
	args := req.Args
	if len(args) == 0 {
		args = proc.Cmd
	}
	env := maps.Clone(rel.Env)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, proc.Env)
	maps.Copy(env, req.Env)
	var be *controller.BuildEnv
	if !app.System {
		if be, err = s.store.BuildEnv.Get(ctx); err != nil {
			return nil, err
		}
	}
	return &JobSpec{
		Job:        &controller.Job{AppID: app.ID, ReleaseID: rel.ID, Type: req.Type, Args: args, Meta: req.Meta, State: controller.JobStatePending},
		Artifact:   artifact,
		Entrypoint: req.Entrypoint,
		Env:        env,
		Process:    proc,
		TTY:        req.TTY,

		AppName:        app.Name,
		ReleaseVersion: rel.Version,
		System:         app.System,
		BuildEnv:       be,
	}, nil
}

// jobArtifact is the artifact a one-off job of rel runs: the one the
// request names (id), else the release's. A named artifact that does not
// exist is the request's mistake, so a validation error rather than a
// not_found, which would read as the app missing. A release that holds
// config only (no push yet) can still run a named artifact: a database
// tool needs the app's env, not its code.
func (s *Server) jobArtifact(ctx context.Context, rel *controller.Release, id string) (*controller.Artifact, error) {
	if id != "" {
		a, err := s.store.Artifacts.Get(ctx, id)
		if errors.Is(err, postgres.ErrNotFound) {
			return nil, httpjson.ValidationError("artifact", "artifact %q does not exist", id)
		}
		if err != nil {
			return nil, fmt.Errorf("artifact %s: %w", id, err)
		}
		return a, nil
	}
	if rel.ArtifactID == "" {
		return nil, httpjson.ValidationError("release", "release %s holds config only: there is nothing to run until the app is pushed", controller.ReleaseVersion(rel.Version))
	}
	a, err := s.store.Artifacts.Get(ctx, rel.ArtifactID)
	if err != nil {
		return nil, fmt.Errorf("release %s artifact: %w", rel.ID, err)
	}
	return a, nil
}

// HostJob builds the host job of the run on hostID (see
// hostjob.ForOneOff): the spec's artifact, entrypoint, args and env (with
// the cluster's build settings under it), the process type's resources,
// and the app's metadata without a process type.
func (spec *JobSpec) HostJob(hostID string) *host.Job {
	return hostjob.ForOneOff(hostID, hostjob.OneOff{
		App: hostjob.App{ID: spec.Job.AppID, Name: spec.AppName, ReleaseID: spec.Job.ReleaseID, ReleaseVersion: spec.ReleaseVersion,
			System: spec.System},
		BuildEnv:   spec.BuildEnv,
		Type:       spec.Job.Type,
		Process:    spec.Process,
		Artifact:   spec.Artifact,
		Entrypoint: spec.Entrypoint,
		Args:       spec.Job.Args,
		Env:        spec.Env,
		Meta:       spec.Job.Meta,
		TTY:        spec.TTY,
	})
}

// recordJob stores the job the runner started.
func (s *Server) recordJob(ctx context.Context, spec *JobSpec, job *controller.Job) error {
	if job == nil || job.ID == "" {
		return errors.New("run job: the runner returned no job id")
	}
	job.AppID, job.ReleaseID, job.Type = spec.Job.AppID, spec.Job.ReleaseID, spec.Job.Type
	if job.Args == nil {
		job.Args = spec.Job.Args
	}
	if len(spec.Entrypoint) > 0 {
		// The record says what runs, as `flynn ps` shows it: "pg_dump
		// --format=custom", not the bare flags.
		job.Args = slices.Concat(spec.Entrypoint, spec.Job.Args)
	}
	if job.Meta == nil {
		job.Meta = spec.Job.Meta
	}
	if job.State == "" {
		job.State = controller.JobStatePending
	}
	return s.store.Jobs.Put(ctx, job)
}

func (s *Server) runAttached(w http.ResponseWriter, r *http.Request, spec *JobSpec) error {
	hijacker, ok := w.(http.Hijacker)
	if !ok {
		return errors.New("attach: the connection cannot be hijacked")
	}
	job, stream, err := s.opts.Runner.RunAttached(r.Context(), spec)
	if err != nil {
		return fmt.Errorf("run attached job: %w", err)
	}
	defer stream.Close()
	if err := s.recordJob(r.Context(), spec, job); err != nil {
		return err
	}
	conn, buf, err := hijacker.Hijack()
	if err != nil {
		return fmt.Errorf("attach: hijack: %w", err)
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\nConnection: Upgrade\r\n%s: %s\r\n\r\n",
		controller.AttachUpgrade, controller.JobIDHeader, job.ID)
	if err := buf.Flush(); err != nil {
		return nil // the client is gone; closing the stream detaches
	}
	s.logger.Info("one-off job attached", "app.id", job.AppID, "job.id", job.ID, "host.id", job.HostID)

	// Copy both ways. A gone client detaches (closing the stream ends the
	// job → client copy); a finished job half-closes the connection, so
	// the client reads the rest and then EOF, and hangs up itself.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(stream, buf) // client → job (buf holds any bytes read past the headers)
		stream.Close()
		_, _ = io.Copy(io.Discard, buf) // until the client hangs up (halfclose.Finish)
	}()
	_, _ = io.Copy(conn, stream) // job → client
	stream.Close()
	halfclose.Finish(conn, halfclose.Linger)
	wg.Wait()
	return nil
}
