package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/pkg/sse"
)

// keepalive is how often an idle stream sends a comment, so that proxies
// keep it open and a gone browser is noticed.
const keepalive = 15 * time.Second

// reconnectDelay is how long a browser waits to reopen a broken stream.
const reconnectDelay = 250 * time.Millisecond

// live streams a "change" event whenever the controller reports a change
// of the app's objects (?app=ID), or of any app's: the page then
// re-renders its sections. It sends what kind of object changed and
// nothing of its data.
func (s *Server) live(w http.ResponseWriter, r *request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	events, err := r.api.StreamEvents(ctx, controller.EventFilter{AppID: r.URL.Query().Get("app")})
	if err != nil {
		http.Error(w, errorText(err), http.StatusBadGateway)
		return
	}
	s.stream(ctx, w, func(out *sse.Writer) error {
		for {
			select {
			case e, ok := <-events:
				if !ok {
					return ctx.Err()
				}
				data, _ := json.Marshal(map[string]string{"type": e.ObjectType, "op": e.Op})
				if err := out.Send(sse.Event{Name: "change", Data: data}); err != nil {
					return err
				}
			case <-time.After(keepalive):
				if err := out.Comment("keepalive"); err != nil {
					return err
				}
			}
		}
	})
}

// logLine is a line of the app's log as the page shows it.
type logLine struct {
	Time        time.Time `json:"time"`
	ProcessType string    `json:"type"`
	JobID       string    `json:"job"`
	Stderr      bool      `json:"stderr,omitempty"`
	Text        string    `json:"text"`
}

// appLog follows the app's log (?process_type= filters), starting with
// its last 100 lines.
func (s *Server) appLog(w http.ResponseWriter, r *request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	opts := logaggregator.ReadOptions{Lines: 100, Follow: true, ProcessType: r.URL.Query().Get("process_type")}
	// A browser that reconnects says the last line it has.
	if last, err := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64); err == nil {
		opts.After = last
	}
	stream, err := r.api.AppLog(ctx, r.ps.ByName("app"), opts)
	if err != nil {
		http.Error(w, errorText(err), http.StatusBadGateway)
		return
	}
	lines, readErr := stream.Lines(ctx)
	readEnded := false
	defer func() {
		// The reader ends once the stream is closed; wait for it.
		cancel()
		stream.Close()
		if !readEnded {
			<-readErr
		}
	}()
	s.stream(ctx, w, func(out *sse.Writer) error {
		for {
			select {
			case l := <-lines:
				data, _ := json.Marshal(logLine{Time: l.Time, ProcessType: l.ProcessType, JobID: l.JobID,
					Stderr: l.Stream == logaggregator.StreamStderr, Text: strings.TrimRight(strings.ReplaceAll(l.Data, "\r", ""), "\n")})
				if err := out.Send(sse.Event{ID: strconv.FormatUint(l.Seq, 10), Name: "line", Data: data}); err != nil {
					return err
				}
			case err := <-readErr:
				readEnded = true
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			case <-time.After(keepalive):
				if err := out.Comment("keepalive"); err != nil {
					return err
				}
			}
		}
	})
}

// stream answers with an event stream that send writes until it returns
// or the browser goes. The server's write timeout does not apply to it.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, send func(*sse.Writer) error) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	out, err := sse.NewWriter(w)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// A page whose stream broke (a network change, a restarted
	// dashboard) catches up as soon as it is back.
	if err := out.Retry(reconnectDelay); err != nil {
		return
	}
	if err := send(out); err != nil && ctx.Err() == nil {
		s.logger.Debug("stream ended", "err", err)
	}
}
