package httpjson

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	type body struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	tests := []struct {
		name        string
		contentType string
		body        string
		max         int64
		wantCode    Code
		wantField   string
	}{
		{name: "ok", body: `{"name":"a","count":1}`},
		{name: "ok with charset", contentType: "application/json; charset=utf-8", body: `{"name":"a"}`},
		{name: "empty", body: ``, wantCode: CodeValidation},
		{name: "malformed", body: `{"name":`, wantCode: CodeValidation},
		{name: "syntax", body: `{name}`, wantCode: CodeValidation},
		{name: "wrong type", body: `{"count":"x"}`, wantCode: CodeValidation, wantField: "count"},
		{name: "unknown field", body: `{"nope":1}`, wantCode: CodeValidation, wantField: "nope"},
		{name: "trailing", body: `{"name":"a"} {}`, wantCode: CodeValidation},
		{name: "too large", body: `{"name":"` + strings.Repeat("a", 100) + `"}`, max: 20, wantCode: CodeRequestTooLarge},
		{name: "not json", contentType: "text/plain", body: `{}`, wantCode: CodeUnsupportedMedia},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var b body
			err := Decode(httptest.NewRecorder(), r, tt.max, &b)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Decode() = %v, want nil", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode() = %v, want *Error", err)
			}
			if e.Code != tt.wantCode || e.Field != tt.wantField {
				t.Errorf("Decode() = code %q field %q, want %q %q", e.Code, e.Field, tt.wantCode, tt.wantField)
			}
		})
	}
}

func TestWriteErrorHidesInternalErrors(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, errors.New("pq: password authentication failed"))
	if w.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", w.Code)
	}
	if strings.Contains(w.Body.String(), "password") {
		t.Errorf("body leaks the internal error: %s", w.Body)
	}
}

func TestReadErrorRoundTrip(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, ValidationError("name", "is required"))
	resp := w.Result()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400", resp.StatusCode)
	}
	err := ReadError(resp)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeValidation || e.Field != "name" {
		t.Fatalf("ReadError() = %#v, want validation_error on name", err)
	}
}

func TestReadErrorForeignBody(t *testing.T) {
	resp := &http.Response{StatusCode: http.StatusNotFound, Status: "404 Not Found", Body: io.NopCloser(strings.NewReader("404 page not found\n"))}
	err := ReadError(resp)
	if !IsNotFound(err) {
		t.Fatalf("ReadError() = %v, want not_found", err)
	}
	if !strings.Contains(err.Error(), "404 page not found") {
		t.Errorf("error %q lost the body", err)
	}
}

func TestEveryCodeHasAStatus(t *testing.T) {
	for code, status := range statusByCode {
		if code.Status() != status {
			t.Errorf("%s.Status() = %d, want %d", code, code.Status(), status)
		}
	}
	if got := Code("nonsense").Status(); got != http.StatusInternalServerError {
		t.Errorf("unknown code status = %d, want 500", got)
	}
}

func TestIsRefusal(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"not found", NotFound("app %q", "x"), true},
		{"wrapped validation", fmt.Errorf("create: %w", ValidationError("name", "empty")), true},
		{"conflict", Errorf(CodeConflict, "busy"), true},
		{"unavailable", Errorf(CodeServiceUnavailable, "starting"), false},
		{"unknown", Errorf(CodeUnknown, "boom"), false},
		{"not an API error", errors.New("connection refused"), false},
	} {
		if got := IsRefusal(tc.err); got != tc.want {
			t.Errorf("%s: IsRefusal(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
