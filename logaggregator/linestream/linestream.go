// Package linestream writes an app's log lines on an HTTP answer as both
// the aggregator and the controller serve them: newline-delimited JSON, or
// Server-Sent Events ("line" events whose id is the line's Seq, so that a
// reconnecting client resumes through Last-Event-ID) when the client
// accepts text/event-stream; with keep-alives (an empty line, an SSE
// comment) while a followed app is quiet.
package linestream

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/pkg/sse"
)

// Writer sends lines on one answer.
type Writer interface {
	// Write sends l; it may sit in a buffer until Flush.
	Write(l *logaggregator.Line) error
	// Flush sends what was written.
	Flush() error
	// KeepAlive sends a keep-alive and flushes it.
	KeepAlive() error
}

// New sends the answer's status and headers, in the format r asks for,
// and returns the Writer of its lines.
func New(w http.ResponseWriter, r *http.Request) (Writer, error) {
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		sw, err := sse.NewWriter(w)
		if err != nil {
			return nil, err
		}
		return &sseLines{w: sw}, nil
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	n := &ndjsonLines{w: w, rc: http.NewResponseController(w)}
	return n, n.Flush()
}

type ndjsonLines struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (n *ndjsonLines) Write(l *logaggregator.Line) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	_, err = n.w.Write(append(b, '\n'))
	return err
}

func (n *ndjsonLines) Flush() error { return n.rc.Flush() }

func (n *ndjsonLines) KeepAlive() error {
	if _, err := n.w.Write([]byte("\n")); err != nil {
		return err
	}
	return n.rc.Flush()
}

type sseLines struct{ w *sse.Writer }

func (s *sseLines) Write(l *logaggregator.Line) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return s.w.Send(sse.Event{ID: strconv.FormatUint(l.Seq, 10), Name: "line", Data: b})
}

func (s *sseLines) Flush() error { return nil } // Send flushes

func (s *sseLines) KeepAlive() error { return s.w.Comment("keep-alive") }
