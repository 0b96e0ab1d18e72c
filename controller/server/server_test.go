package server

import (
	"errors"
	"fmt"
	"testing"

	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func TestAPIError(t *testing.T) {
	internal := errors.New("connection reset")
	handlerMade := httpjson.ValidationError("app", "app %q does not exist", "x")
	tests := []struct {
		name string
		err  error
		want error // an *httpjson.Error to compare by value, or the error itself
	}{
		{"not found", &postgres.Error{Err: postgres.ErrNotFound, Message: "app not found"},
			&httpjson.Error{Code: httpjson.CodeNotFound, Message: "app not found"}},
		{"exists", &postgres.Error{Err: postgres.ErrExists, Field: "name", Message: "app already exists"},
			&httpjson.Error{Code: httpjson.CodeObjectExists, Field: "name", Message: "app already exists"}},
		{"conflict", &postgres.Error{Err: postgres.ErrConflict, Field: "release", Message: "job j belongs to another app or release"},
			&httpjson.Error{Code: httpjson.CodeConflict, Field: "release", Message: "job j belongs to another app or release"}},
		{"precondition", &postgres.Error{Err: postgres.ErrPrecondition, Message: "deployment d is complete already"},
			&httpjson.Error{Code: httpjson.CodePreconditionFailed, Message: "deployment d is complete already"}},
		{"already deployed", postgres.ErrAlreadyDeployed,
			&httpjson.Error{Code: httpjson.CodePreconditionFailed, Message: "release is already the app's current release"}},
		{"invalid", &postgres.Error{Err: postgres.ErrInvalid, Field: "processes.web", Message: "count must not be negative"},
			&httpjson.Error{Code: httpjson.CodeValidation, Field: "processes.web", Message: "count must not be negative"}},
		{"wrapped keeps the store's message", fmt.Errorf("release r artifact: %w", &postgres.Error{Err: postgres.ErrNotFound, Message: "artifact not found"}),
			&httpjson.Error{Code: httpjson.CodeNotFound, Message: "artifact not found"}},
		{"handler's API error unchanged", handlerMade, handlerMade},
		{"internal error unchanged", internal, internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := apiError(tt.err)
			want, isAPI := tt.want.(*httpjson.Error)
			gotAPI, ok := got.(*httpjson.Error)
			switch {
			case isAPI && got == tt.want:
			case isAPI && ok && *gotAPI == *want:
			case !isAPI && got == tt.want:
			default:
				t.Errorf("apiError(%v) = %#v, want %#v", tt.err, got, tt.want)
			}
		})
	}
}
