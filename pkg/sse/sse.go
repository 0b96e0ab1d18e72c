// Package sse writes and reads Server-Sent Events streams, the format every
// Flynn watch API (discoverd, host job events, controller events) uses.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Event is one Server-Sent Event.
type Event struct {
	// ID is sent as the event's id (resumption point); empty sends none.
	ID string
	// Name is the event's type; empty means "message".
	Name string
	// Data is the payload; newlines are split over several data lines.
	Data []byte
}

// Writer sends events on an HTTP response, flushing after each one.
type Writer struct {
	w       io.Writer
	flusher http.Flusher
}

// NewWriter sets the stream's headers, sends the status line and returns a
// Writer. It fails when w cannot flush, since then events would sit in a
// buffer instead of reaching the client.
func NewWriter(w http.ResponseWriter) (*Writer, error) {
	f, ok := w.(http.Flusher)
	if !ok {
		return nil, errors.New("sse: response writer cannot flush")
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f.Flush()
	return &Writer{w: w, flusher: f}, nil
}

// Send writes one event and flushes it. It refuses an event the stream
// cannot carry as it is: a line break in the ID or name would end the
// field early and let the rest be read as fields of its own, and a CR in
// the data would be read back as (part of) a line end.
func (s *Writer) Send(e Event) error {
	if strings.ContainsAny(e.ID, "\r\n\x00") {
		return fmt.Errorf("sse: event id %q holds a line break or NUL", e.ID)
	}
	if strings.ContainsAny(e.Name, "\r\n") {
		return fmt.Errorf("sse: event name %q holds a line break", e.Name)
	}
	if bytes.IndexByte(e.Data, '\r') >= 0 {
		return errors.New("sse: event data holds a CR")
	}
	var b strings.Builder
	if e.ID != "" {
		fmt.Fprintf(&b, "id: %s\n", e.ID)
	}
	if e.Name != "" {
		fmt.Fprintf(&b, "event: %s\n", e.Name)
	}
	for _, line := range strings.Split(string(e.Data), "\n") {
		fmt.Fprintf(&b, "data: %s\n", line)
	}
	b.WriteByte('\n')
	if _, err := io.WriteString(s.w, b.String()); err != nil {
		return fmt.Errorf("sse: write event: %w", err)
	}
	s.flusher.Flush()
	return nil
}

// Retry tells the client how long to wait before it reconnects after the
// stream breaks (the field "retry", in milliseconds). Browsers wait about
// 3 s by default: too long for a page that shows what changes.
func (s *Writer) Retry(d time.Duration) error {
	if _, err := fmt.Fprintf(s.w, "retry: %d\n\n", d.Milliseconds()); err != nil {
		return fmt.Errorf("sse: write retry: %w", err)
	}
	s.flusher.Flush()
	return nil
}

// Comment writes a comment line, which clients ignore; it keeps idle
// connections open through proxies and detects gone clients.
func (s *Writer) Comment(text string) error {
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return fmt.Errorf("sse: write comment: %w", err)
	}
	s.flusher.Flush()
	return nil
}

// Reader parses events from a stream.
type Reader struct {
	// MaxEvent bounds an event's size in bytes (its ID, name and data
	// together): Next fails with ErrEventTooLarge rather than buffer a
	// peer's data lines without end. 0 means DefaultMaxEvent.
	MaxEvent int

	r *bufio.Reader
}

// DefaultMaxEvent is a Reader's MaxEvent when it sets none: the longest
// line, since the events Flynn sends are one line of JSON.
const DefaultMaxEvent = MaxLine

// ErrEventTooLarge is the error, wrapped, of Next on an event larger than
// the Reader's MaxEvent. The stream is then mid-event: drop it.
var ErrEventTooLarge = errors.New("sse: event too large")

// NewReader returns a Reader over r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10)}
}

// MaxLine bounds one line of a stream, so a broken peer cannot make a reader
// buffer without end.
const MaxLine = 4 << 20

// Next returns the next event. It returns io.EOF when the stream ends
// cleanly between events.
func (s *Reader) Next() (Event, error) {
	limit := s.MaxEvent
	if limit <= 0 {
		limit = DefaultMaxEvent
	}
	var (
		e       Event
		data    []string
		dataLen int // of the data joined with newlines
		hasData bool
		started bool
	)
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && started {
				return Event{}, io.ErrUnexpectedEOF
			}
			return Event{}, err
		}
		if line == "" {
			if !hasData {
				// A block without data dispatches nothing, and its
				// fields do not carry over to the next event.
				e, started = Event{}, false
				continue
			}
			e.Data = []byte(strings.Join(data, "\n"))
			return e, nil
		}
		started = true
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			e.ID = value
		case "event":
			e.Name = value
		case "data":
			if hasData {
				dataLen++
			}
			dataLen += len(value)
			data = append(data, value)
			hasData = true
		}
		if size := len(e.ID) + len(e.Name) + dataLen; size > limit {
			return Event{}, fmt.Errorf("%w: more than %d bytes", ErrEventTooLarge, limit)
		}
	}
}

func (s *Reader) readLine() (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := s.r.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > MaxLine {
			return "", fmt.Errorf("sse: line longer than %d bytes", MaxLine)
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}
