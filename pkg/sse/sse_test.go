package sse

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
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
