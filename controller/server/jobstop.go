package server

import (
	"context"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/pkg/httpjson"
)

// JobStopper is the optional part of a JobRunner that stops a job on the
// host running it. A runner without it answers stop requests with
// service_unavailable.
type JobStopper interface {
	StopJob(ctx context.Context, hostID, jobID string) error
}

// stopJob serves DELETE /apps/:id/jobs/:job_id: the job's host stops it
// (SIGTERM, then SIGKILL after its grace period). A job of a formation is
// replaced by the scheduler, as `flynn kill` says; a one-off job just ends.
func (s *Server) stopJob(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	job, err := s.store.Jobs.Get(r.Context(), ps.ByName("id"), ps.ByName("job_id"))
	if err != nil {
		return err
	}
	stopper, ok := s.opts.Runner.(JobStopper)
	if !ok {
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: "this controller cannot reach hosts to stop jobs", Retry: true}
	}
	hostID, err := hostOf(job)
	if err != nil {
		return err
	}
	if err := stopper.StopJob(r.Context(), hostID, job.ID); err != nil {
		return err
	}
	s.logger.Info("job stopped", "app.id", job.AppID, "job.id", job.ID, "host.id", hostID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
