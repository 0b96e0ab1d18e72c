// Package httpjson holds the JSON error shape every Flynn API speaks, the one
// table that maps error codes to HTTP statuses, and helpers to read request
// bodies and write responses in that shape.
package httpjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Code names a kind of API error. Clients switch on it; the HTTP status is
// derived from it through one table (see Status).
type Code string

// The error codes shared by every Flynn API.
const (
	CodeValidation         Code = "validation_error"
	CodeUnauthorized       Code = "unauthorized"
	CodeForbidden          Code = "forbidden"
	CodeNotFound           Code = "not_found"
	CodeMethodNotAllowed   Code = "method_not_allowed"
	CodeObjectExists       Code = "object_exists"
	CodeConflict           Code = "conflict"
	CodePreconditionFailed Code = "precondition_failed"
	CodeRequestTooLarge    Code = "request_entity_too_large"
	CodeUnsupportedMedia   Code = "unsupported_media_type"
	CodeServiceUnavailable Code = "service_unavailable"
	CodeUnknown            Code = "unknown_error"
)

var statusByCode = map[Code]int{
	CodeValidation:         http.StatusBadRequest,
	CodeUnauthorized:       http.StatusUnauthorized,
	CodeForbidden:          http.StatusForbidden,
	CodeNotFound:           http.StatusNotFound,
	CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	CodeObjectExists:       http.StatusConflict,
	CodeConflict:           http.StatusConflict,
	CodePreconditionFailed: http.StatusPreconditionFailed,
	CodeRequestTooLarge:    http.StatusRequestEntityTooLarge,
	CodeUnsupportedMedia:   http.StatusUnsupportedMediaType,
	CodeServiceUnavailable: http.StatusServiceUnavailable,
	CodeUnknown:            http.StatusInternalServerError,
}

// Status returns the HTTP status for code; unknown codes map to 500.
func (c Code) Status() int {
	if s, ok := statusByCode[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// CodeForStatus returns the code a bare HTTP status stands for, for replies
// that carry no JSON body (a proxy's 502, say).
func CodeForStatus(status int) Code {
	for c, s := range statusByCode {
		if s == status && c != CodeConflict {
			return c
		}
	}
	return CodeUnknown
}

// Error is the JSON body of every failed API call.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Field names the offending request field, for validation errors.
	Field string `json:"field,omitempty"`
	// Retry says the same call may succeed later.
	Retry bool `json:"retry,omitempty"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Status returns the HTTP status the error is sent with.
func (e *Error) Status() int { return e.Code.Status() }

// ValidationError returns a validation_error for field.
func ValidationError(field, format string, args ...any) *Error {
	return &Error{Code: CodeValidation, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound returns a not_found error.
func NotFound(format string, args ...any) *Error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

// Errorf returns an error with the given code.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// IsCode reports whether err is (or wraps) an *Error with the given code.
func IsCode(err error, code Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// IsNotFound reports whether err is a not_found API error.
func IsNotFound(err error) bool { return IsCode(err, CodeNotFound) }

// IsRefusal reports whether err is (or wraps) an *Error the server sends
// with a 4xx status: an answer about the request itself (not found,
// invalid, conflict), which asking again will not change, unlike an
// unreachable server or its 5xx.
func IsRefusal(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status() < http.StatusInternalServerError
}

// Write sends v as JSON with the given status.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v == nil {
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError sends err as a JSON Error. An error that is not an *Error is
// sent as an unknown_error with a generic message, so internal details never
// reach the client; the caller logs it.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: CodeUnknown, Message: "internal error"}
	}
	Write(w, e.Status(), e)
}

// DefaultMaxBody bounds request bodies read by Decode when the caller gives
// no limit of its own.
const DefaultMaxBody = 1 << 20

// Decode reads a JSON request body into v. It refuses bodies over maxBytes
// (DefaultMaxBody when zero), content types other than JSON, unknown fields
// and trailing data, each with an *Error that says which.
func Decode(w http.ResponseWriter, r *http.Request, maxBytes int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return Errorf(CodeUnsupportedMedia, "content type must be application/json, got %q", ct)
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBody
	}
	body := http.MaxBytesReader(w, r.Body, maxBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, maxBytes)
	}
	if _, err := dec.Token(); err != io.EOF {
		return ValidationError("", "request body must hold a single JSON value")
	}
	return nil
}

func decodeError(err error, maxBytes int64) error {
	var (
		tooLarge  *http.MaxBytesError
		syntax    *json.SyntaxError
		typeError *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return Errorf(CodeRequestTooLarge, "request body is larger than %d bytes", maxBytes)
	case errors.Is(err, io.EOF):
		return ValidationError("", "request body is empty")
	case errors.As(err, &syntax):
		return ValidationError("", "malformed JSON at offset %d: %v", syntax.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return ValidationError("", "malformed JSON: unexpected end of body")
	case errors.As(err, &typeError):
		return ValidationError(typeError.Field, "must be %s, got %s", typeError.Type, typeError.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return ValidationError(field, "unknown field")
	default:
		return ValidationError("", "invalid request body: %v", err)
	}
}

// ReadError turns a failed HTTP response into an error: the JSON *Error it
// carries, or one built from its status when the body is not ours.
func ReadError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e Error
	if json.Unmarshal(body, &e) == nil && e.Code != "" {
		return &e
	}
	msg := strings.TrimSpace(string(body))
	if msg == "" {
		msg = resp.Status
	}
	return &Error{Code: CodeForStatus(resp.StatusCode), Message: msg}
}
