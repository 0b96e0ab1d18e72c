package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/logaggregator"
	logclient "github.com/openflynn/flynn/logaggregator/client"
	"github.com/openflynn/flynn/logaggregator/linestream"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// AppLogReader reads an app's lines from the log aggregator;
// logaggregator/client's Client is one.
type AppLogReader interface {
	Read(ctx context.Context, appID string, opts logaggregator.ReadOptions) (*logclient.Stream, error)
}

// appLog serves GET /apps/:id/log: the app's lines kept by the log
// aggregator (logaggregator.Line, oldest first), selected by the query
// (lines, follow, process_type, job_id, since; see
// logaggregator.ReadOptions), as newline-delimited JSON, or as SSE ("line"
// events whose id resumes a follow through Last-Event-ID) when the client
// accepts text/event-stream. A follow gets keep-alives (an empty line or
// an SSE comment) while the app is quiet.
func (s *Server) appLog(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	opts, err := logaggregator.ParseReadOptions(r.URL.Query())
	if err != nil {
		return httpjson.ValidationError("query", "%v", err)
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			return httpjson.ValidationError("Last-Event-ID", "want a line's sequence number, not %q", id)
		}
		opts.After = n
	}
	app, err := s.store.Apps.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	if s.opts.Logs == nil {
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: "this controller has no log aggregator", Retry: true}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stream, err := s.opts.Logs.Read(ctx, app.ID, opts)
	if err != nil {
		s.logger.Warn("read app log", "app.id", app.ID, "err", err)
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: "the log aggregator cannot be reached", Retry: true}
	}
	defer stream.Close()

	out, err := linestream.New(w, r)
	if err != nil {
		return err
	}

	lines, readErr := stream.Lines(ctx)
	tick := time.NewTicker(s.opts.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case l := <-lines:
			if err := writeLine(out, &l); err != nil {
				cancel()
				stream.Close()
				<-readErr
				return nil // the client is gone
			}
		case <-tick.C:
			if !opts.Follow {
				continue
			}
			if err := out.KeepAlive(); err != nil {
				cancel()
				stream.Close()
				<-readErr
				return nil
			}
		case err := <-readErr:
			// The status is sent: a broken stream ends the answer early.
			if !errors.Is(err, io.EOF) && r.Context().Err() == nil {
				s.logger.Warn("app log stream broke", "app.id", app.ID, "err", err)
			}
			return nil
		}
	}
}

// writeLine sends one line at once: the controller relays lines as the
// aggregator sends them.
func writeLine(out linestream.Writer, l *logaggregator.Line) error {
	if err := out.Write(l); err != nil {
		return err
	}
	return out.Flush()
}
