package sse

import (
	"bytes"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzReader reads arbitrary streams with a small MaxEvent and checks
// Next against a plain reading of the format: the same events, then the
// same end (io.EOF, io.ErrUnexpectedEOF or ErrEventTooLarge), and never an
// event larger than the limit.
func FuzzReader(f *testing.F) {
	seeds := []struct {
		stream string
		max    uint16
	}{
		{"event: up\ndata: {\"addr\":\"127.0.0.1:1\"}\n\n", 0},
		{"id: 1\nevent: up\ndata: a\ndata: b\n\n: keepalive\n\nid: 2\ndata\n\n", 64},
		{"data: x\r\n\r\ndata:y\n\n", 8},
		{"data: " + strings.Repeat("x", 40) + "\n\n", 16},
		{"data: a\ndata: b\ndata: c\ndata: d\ndata: e\n", 4},
		{"id: " + strings.Repeat("9", 30) + "\n\n", 8},
		{"event: up\ndata: {", 0},
		{":only a comment\n\n\n\n", 1},
		{"data: a\r", 3},
		{"retry: 10\nfoo: bar\ndata:  two spaces\n\n", 32},
		{"\n\n\ndata: x\n\n", 1},
	}
	for _, s := range seeds {
		f.Add([]byte(s.stream), s.max)
	}
	f.Fuzz(func(t *testing.T, stream []byte, max uint16) {
		limit := int(max) % 512 // 0: the default
		want, wantEnd := referenceRead(stream, limit)

		r := NewReader(bytes.NewReader(stream))
		r.MaxEvent = limit
		effective := limit
		if effective == 0 {
			effective = DefaultMaxEvent
		}
		var got []Event
		var end error
		// Each event takes at least one line, so a reader that returns
		// more events than the stream has bytes is looping.
		for range len(stream) + 2 {
			e, err := r.Next()
			if err != nil {
				end = err
				break
			}
			if size := len(e.ID) + len(e.Name) + len(e.Data); size > effective {
				t.Fatalf("event %+v is %d bytes, more than MaxEvent %d", e, size, effective)
			}
			got = append(got, e)
		}
		if end == nil {
			t.Fatalf("Next returned %d events from %d bytes and no end", len(got), len(stream))
		}
		if !sameEnd(end, wantEnd) {
			t.Fatalf("stream %q (max %d): ended with %v, want %v", stream, limit, end, wantEnd)
		}
		if len(got) != len(want) {
			t.Fatalf("stream %q (max %d): %d events %+v, want %d %+v", stream, limit, len(got), got, len(want), want)
		}
		for i := range want {
			if got[i].ID != want[i].ID || got[i].Name != want[i].Name || !bytes.Equal(got[i].Data, want[i].Data) {
				t.Fatalf("stream %q: event %d = %+v, want %+v", stream, i, got[i], want[i])
			}
		}
	})
}

func sameEnd(got, want error) bool {
	if errors.Is(want, ErrEventTooLarge) {
		return errors.Is(got, ErrEventTooLarge)
	}
	return got == want
}

// referenceRead is the format read the plain way, for FuzzReader: lines
// end in LF or CRLF; a blank line ends an event that has data; fields are
// "name: value" with one optional space; comments start with ':'.
func referenceRead(stream []byte, limit int) ([]Event, error) {
	if limit == 0 {
		limit = DefaultMaxEvent
	}
	var lines []string
	rest := string(stream)
	for rest != "" {
		line, after, found := strings.Cut(rest, "\n")
		if found {
			line = strings.TrimSuffix(line, "\r")
		}
		lines = append(lines, line)
		rest = after
	}
	var (
		events  []Event
		e       Event
		data    []string
		started bool
	)
	for _, line := range lines {
		if line == "" {
			if data != nil {
				e.Data = []byte(strings.Join(data, "\n"))
				events = append(events, e)
			}
			e, data, started = Event{}, nil, false
			continue
		}
		started = true
		if line[0] == ':' {
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
			data = append(data, value)
		}
		if len(e.ID)+len(e.Name)+len(strings.Join(data, "\n")) > limit {
			return events, ErrEventTooLarge
		}
	}
	if started {
		return events, io.ErrUnexpectedEOF
	}
	return events, io.EOF
}

// FuzzWriterRoundTrip sends arbitrary events: Send refuses exactly those
// the format cannot carry, and a Reader gives back every other one as it
// was sent, alone (no field of it read as a field of its own), or
// refuses it when it is larger than the Reader's MaxEvent.
func FuzzWriterRoundTrip(f *testing.F) {
	f.Add("1", "up", []byte(`{"addr":"127.0.0.1:1"}`), uint16(0))
	f.Add("", "", []byte(""), uint16(1))
	f.Add("42", "down", []byte("line one\nline two\n"), uint16(12))
	f.Add("7", "up\ndata: injected", []byte("x"), uint16(0))
	f.Add("7\n\nid: 8", "up", []byte("x"), uint16(0))
	f.Add(" id", " name", []byte(" data\n"), uint16(0))
	f.Add("a", "b", []byte("crlf\r\ninside"), uint16(0))
	f.Add("a:b", "c:d", []byte(":not a comment\n:"), uint16(3))
	f.Fuzz(func(t *testing.T, id, name string, data []byte, max uint16) {
		rec := httptest.NewRecorder()
		w, err := NewWriter(rec)
		if err != nil {
			t.Fatal(err)
		}
		e := Event{ID: id, Name: name, Data: data}
		err = w.Send(e)
		carriable := !strings.ContainsAny(id, "\r\n\x00") && !strings.ContainsAny(name, "\r\n") && !bytes.Contains(data, []byte("\r"))
		if !carriable {
			if err == nil {
				t.Fatalf("Send(%+v) = nil, want an error: the stream cannot carry it", e)
			}
			return
		}
		if err != nil {
			t.Fatalf("Send(%+v) = %v", e, err)
		}

		r := NewReader(rec.Body)
		r.MaxEvent = int(max) % 256
		got, err := r.Next()
		if size := len(id) + len(name) + len(data); r.MaxEvent > 0 && size > r.MaxEvent {
			if !errors.Is(err, ErrEventTooLarge) {
				t.Fatalf("event of %d bytes read with MaxEvent %d: %+v, %v; want ErrEventTooLarge", size, r.MaxEvent, got, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("read back %+v: %v", e, err)
		}
		if got.ID != id || got.Name != name || !bytes.Equal(got.Data, data) {
			t.Fatalf("sent %+v, read %+v", e, got)
		}
		if extra, err := r.Next(); err != io.EOF {
			t.Fatalf("sent one event, read another: %+v, %v", extra, err)
		}
	})
}
