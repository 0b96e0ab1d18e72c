package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// JobLogReader is the optional part of a JobRunner that reads a job's log
// from the host running it. A runner without it answers log requests with
// service_unavailable.
type JobLogReader interface {
	JobLog(ctx context.Context, hostID, jobID string, opts JobLogOptions) (LogStream, error)
}

// JobLogOptions select log lines.
type JobLogOptions struct {
	// Follow keeps the stream open until the job ends.
	Follow bool
	// Tail starts with only the last Tail lines (0: all).
	Tail int
}

// LogStream is a job's log as the host sends it; host/client's LogStream
// is one.
type LogStream interface {
	// Next returns the next line, or io.EOF at the end.
	Next() (host.LogLine, error)
	Close() error
}

// jobIDUUIDLen is the length of the "-<uuid>" suffix of a job id.
const jobIDUUIDLen = 37

// hostOf returns the id of the host a job runs on: as reported, or from
// the job id ("<hostID>-<uuid>").
func hostOf(job *controller.Job) (string, error) {
	hostID := job.HostID
	if hostID == "" && len(job.ID) > jobIDUUIDLen {
		hostID = job.ID[:len(job.ID)-jobIDUUIDLen]
	}
	if hostID == "" {
		return "", httpjson.Errorf(httpjson.CodeNotFound, "job %s has no host", job.ID)
	}
	return hostID, nil
}

// jobLog serves GET /apps/:id/jobs/:job_id/log?follow=true&tail=N: the
// host's log lines (host.LogLine), one JSON object a line, flushed as they
// come.
func (s *Server) jobLog(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	q := r.URL.Query()
	var opts JobLogOptions
	if f := q.Get("follow"); f != "" {
		v, err := strconv.ParseBool(f)
		if err != nil {
			return httpjson.ValidationError("follow", "must be true or false")
		}
		opts.Follow = v
	}
	if t := q.Get("tail"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return httpjson.ValidationError("tail", "must be a number of lines")
		}
		opts.Tail = n
	}
	job, err := s.store.Jobs.Get(r.Context(), ps.ByName("id"), ps.ByName("job_id"))
	if err != nil {
		return err
	}
	logs, ok := s.opts.Runner.(JobLogReader)
	if !ok {
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: "this controller cannot reach hosts for logs", Retry: true}
	}
	hostID, err := hostOf(job)
	if err != nil {
		return err
	}
	stream, err := logs.JobLog(r.Context(), hostID, job.ID, opts)
	if err != nil {
		return err
	}
	defer stream.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	for {
		line, err := stream.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			// The status is sent; the client sees the stream end early.
			if r.Context().Err() == nil {
				s.logger.Warn("job log stream broke", "job.id", job.ID, "host.id", hostID, "err", err)
			}
			return nil
		}
		if err := enc.Encode(&line); err != nil {
			return nil // the client is gone
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}
