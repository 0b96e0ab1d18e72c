package postgres

import (
	"errors"
	"fmt"
)

// The kinds of refusal a repository returns, each inside an *Error that
// says what was refused; test for them with errors.Is. Any other error is
// the store's own failure (a lost connection, a bug).
var (
	// ErrNotFound: the object named does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a unique field (Error.Field) is taken by another object.
	ErrExists = errors.New("already exists")
	// ErrConflict: the change contradicts what is stored (a job moving to
	// another release).
	ErrConflict = errors.New("conflict")
	// ErrPrecondition: the object is not in a state that allows the change
	// (a deployment that finished already).
	ErrPrecondition = errors.New("precondition failed")
	// ErrInvalid: an input is wrong in itself or names a missing object
	// where one is required (Error.Field says which).
	ErrInvalid = errors.New("invalid")
)

// ErrAlreadyDeployed is Deploy's refusal when the release is the app's
// current release already. It is an ErrPrecondition.
var ErrAlreadyDeployed = &Error{Err: ErrPrecondition, Message: "release is already the app's current release"}

// Error is a repository's refusal of a call: the kind of refusal for
// programs (Err, one of the sentinels above, which errors.Is sees through
// to), and for people the input at fault and what is wrong with it.
type Error struct {
	// Err is ErrNotFound, ErrExists, ErrConflict, ErrPrecondition or
	// ErrInvalid.
	Err error
	// Field names the input at fault ("name" of an app whose name is
	// taken, "processes.web"), or is empty.
	Field string
	// Message says what is wrong ("app not found"); it holds no internal
	// details, so it can be shown to whoever made the call.
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Unwrap returns the sentinel, for errors.Is.
func (e *Error) Unwrap() error { return e.Err }

// notFound is the refusal for a missing object of the kind what ("app").
func notFound(what string) *Error {
	return &Error{Err: ErrNotFound, Message: what + " not found"}
}

// invalid is the refusal of an input field.
func invalid(field, format string, args ...any) *Error {
	return &Error{Err: ErrInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}
