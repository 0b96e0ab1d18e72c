package sse

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	events := []Event{
		{ID: "1", Name: "up", Data: []byte(`{"addr":"127.0.0.1:1"}`)},
		{Name: "current", Data: []byte("")},
		{Data: []byte("line one\nline two")},
		{ID: "42", Name: "down", Data: []byte(`{}`)},
	}
	rec := httptest.NewRecorder()
	w, err := NewWriter(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Comment("keepalive"); err != nil {
		t.Fatal(err)
	}
	if err := w.Retry(250 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rec.Body.String(), "\nretry: 250\n\n") {
		t.Errorf("the stream lacks the retry field: %q", rec.Body.String())
	}
	for _, e := range events {
		if err := w.Send(e); err != nil {
			t.Fatal(err)
		}
	}
	if got := rec.Header().Get("Content-Type"); got != "text/event-stream" {
		t.Errorf("Content-Type = %q", got)
	}
	r := NewReader(rec.Body)
	for i, want := range events {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if got.ID != want.ID || got.Name != want.Name || string(got.Data) != string(want.Data) {
			t.Errorf("event %d = %+v, want %+v", i, got, want)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after last event: err = %v, want io.EOF", err)
	}
}

func TestReaderTruncatedEvent(t *testing.T) {
	r := NewReader(strings.NewReader("event: up\ndata: {"))
	if _, err := r.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestReaderLongLine(t *testing.T) {
	r := NewReader(strings.NewReader("data: " + strings.Repeat("x", MaxLine+10) + "\n\n"))
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("err = %v, want line too long", err)
	}
}

func TestReaderEventTooLarge(t *testing.T) {
	// Each line is short; the event, never ended by a blank line, is not.
	line := "data: " + strings.Repeat("x", 1<<10) + "\n"
	tests := []struct {
		name     string
		maxEvent int
		lines    int
	}{
		{"default limit", 0, DefaultMaxEvent>>10 + 1},
		{"own limit", 4 << 10, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(strings.Repeat(line, tt.lines)))
			r.MaxEvent = tt.maxEvent
			if e, err := r.Next(); !errors.Is(err, ErrEventTooLarge) {
				t.Fatalf("Next() = %d bytes of data, %v; want ErrEventTooLarge", len(e.Data), err)
			}
		})
	}
}

func TestWriterRefusesWhatItCannotCarry(t *testing.T) {
	tests := []struct {
		name string
		e    Event
	}{
		{"newline in name", Event{Name: "up\ndata: forged", Data: []byte("x")}},
		{"newline in id", Event{ID: "1\n\nid: 2", Data: []byte("x")}},
		{"CR in id", Event{ID: "1\r", Data: []byte("x")}},
		{"NUL in id", Event{ID: "1\x00", Data: []byte("x")}},
		{"CR in data", Event{Data: []byte("a\r\nb")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			w, err := NewWriter(rec)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Send(tt.e); err == nil {
				t.Fatalf("Send(%+v) = nil, want an error", tt.e)
			}
			if rec.Body.Len() != 0 {
				t.Errorf("a refused event wrote %q", rec.Body.String())
			}
		})
	}
}

func TestReaderDropsFieldsOfEmptyBlock(t *testing.T) {
	r := NewReader(strings.NewReader("event: stale\nid: 9\n\ndata: x\n\n"))
	e, err := r.Next()
	if err != nil || e.Name != "" || e.ID != "" || string(e.Data) != "x" {
		t.Fatalf("Next() = %+v, %v; want only data x", e, err)
	}
}
