// Package server serves flynn-host's HTTP API over a daemon.Daemon, and
// Run wires the whole daemon (Docker backend, discoverd, listener) for
// cmd/flynn-host. Its Registrar registers the host and its jobs in the
// first of the cluster's discoverds that answers, the node's own first,
// and follows the cluster's nodes for the firewall between them; Node
// sets the nodes of one machine apart (`flynn-host daemon --node N`).
package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/metrics"
	"github.com/openflynn/flynn/pkg/sse"
)

// maxJobBody bounds a job's JSON.
const maxJobBody = 1 << 20

// Handler returns the host API over d; every call needs key when it is set.
// The routes are listed in package host's documentation. It registers the
// daemon's series (daemon.Collector) and the API's request series
// (flynn_host_http_*) in reg, which it serves at metrics.Path.
func Handler(d *daemon.Daemon, key string, reg *prometheus.Registry, logger *slog.Logger) http.Handler {
	a := &api{d: d, log: logger}
	reg.MustRegister(d.Collector())
	m := metrics.NewHTTP(reg, "flynn_host")
	r := m.Router()
	r.GET("/host/jobs", a.listJobs)
	r.GET("/host/jobs/:id", a.getJob)
	r.GET("/host/jobs/:id/stats", a.jobStats)
	r.PUT("/host/jobs/:id", a.addJob)
	r.DELETE("/host/jobs/:id", a.stopJob)
	r.POST("/host/jobs/:id/signal/:signal", a.signalJob)
	r.GET("/host/jobs/:id/log", a.jobLog)
	r.GET("/host/events", a.events)
	r.GET("/host/status", a.status)
	r.POST("/host/attach", a.attach)
	r.POST("/host/images/build", a.buildImage)
	r.GET("/host/images/:id/archive", a.builtImageArchive)
	r.POST("/host/gc", a.collectGarbage)
	r.Handler(http.MethodGet, metrics.Path, metrics.Handler(reg, key))
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpjson.WriteError(w, httpjson.NotFound("no such endpoint"))
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpjson.WriteError(w, httpjson.Errorf(httpjson.CodeMethodNotAllowed, "method not allowed"))
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		if v == http.ErrAbortHandler {
			panic(v) // a stream to cut short, for net/http (build.go)
		}
		logger.Error("panic in handler", "path", req.URL.Path, "panic", v)
		httpjson.WriteError(w, errors.New("panic"))
	}
	return m.Wrap(authkey.Require(key, r))
}

type api struct {
	d   *daemon.Daemon
	log *slog.Logger
}

func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *httpjson.Error
	if !errors.As(err, &e) {
		a.log.Error("host api", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	httpjson.WriteError(w, err)
}

func (a *api) listJobs(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	withStats := false
	if v := r.URL.Query().Get("stats"); v != "" {
		var err error
		if withStats, err = strconv.ParseBool(v); err != nil {
			a.fail(w, r, httpjson.ValidationError("stats", "must be true or false"))
			return
		}
	}
	if withStats {
		httpjson.Write(w, http.StatusOK, a.d.JobsWithStats(r.Context()))
		return
	}
	httpjson.Write(w, http.StatusOK, a.d.Jobs())
}

func (a *api) jobStats(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	s, err := a.d.JobStats(r.Context(), ps.ByName("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, s)
}

func (a *api) getJob(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	j, err := a.d.Job(ps.ByName("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, j)
}

func (a *api) addJob(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	var jb host.Job
	if err := httpjson.Decode(w, r, maxJobBody, &jb); err != nil {
		a.fail(w, r, err)
		return
	}
	if jb.ID == "" {
		jb.ID = ps.ByName("id")
	}
	if jb.ID != ps.ByName("id") {
		a.fail(w, r, httpjson.ValidationError("id", "job id %q does not match the URL's %q", jb.ID, ps.ByName("id")))
		return
	}
	j, err := a.d.AddJob(r.Context(), &jb)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, j)
}

func (a *api) stopJob(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	j, err := a.d.StopJob(r.Context(), ps.ByName("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, j)
}

func (a *api) signalJob(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if err := a.d.SignalJob(r.Context(), ps.ByName("id"), ps.ByName("signal")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) jobLog(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	q := r.URL.Query()
	opts := daemon.LogOptions{Follow: q.Get("follow") == "true", Stream: q.Get("stream")}
	if opts.Stream != "" && opts.Stream != host.StreamStdout && opts.Stream != host.StreamStderr {
		a.fail(w, r, httpjson.ValidationError("stream", "must be stdout or stderr"))
		return
	}
	if t := q.Get("tail"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			a.fail(w, r, httpjson.ValidationError("tail", "must be a non-negative number"))
			return
		}
		opts.Tail = n
	}
	if _, err := a.d.Job(ps.ByName("id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	err := a.d.ReadLog(r.Context(), ps.ByName("id"), opts, func(l host.LogLine) error {
		if err := enc.Encode(l); err != nil {
			return err
		}
		if flusher != nil && opts.Follow {
			flusher.Flush()
		}
		return nil
	})
	if err != nil && r.Context().Err() == nil {
		a.log.Warn("stream job log", "job_id", ps.ByName("id"), "err", err)
	}
}

func (a *api) events(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	ch, unsubscribe := a.d.Subscribe(r.URL.Query().Get("job_id"))
	defer unsubscribe()
	s, err := sse.NewWriter(w)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			if s.Comment("keepalive") != nil {
				return
			}
		case ev, ok := <-ch:
			if !ok {
				return
			}
			data, _ := json.Marshal(ev)
			if s.Send(sse.Event{ID: strconv.FormatUint(ev.ID, 10), Name: "job", Data: data}) != nil {
				return
			}
		}
	}
}

// collectGarbage runs the host's garbage collector once; ?dry_run=true
// removes nothing.
func (a *api) collectGarbage(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	dryRun := false
	if v := r.URL.Query().Get("dry_run"); v != "" {
		var err error
		if dryRun, err = strconv.ParseBool(v); err != nil {
			a.fail(w, r, httpjson.ValidationError("dry_run", "must be true or false"))
			return
		}
	}
	rep, err := a.d.CollectGarbage(r.Context(), dryRun)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, rep)
}

func (a *api) status(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	httpjson.Write(w, http.StatusOK, a.d.Status())
}

// detached keeps request-scoped values but not the request's cancellation,
// for work that outlives the handler's return (an attach's backend stream).
func detached(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
