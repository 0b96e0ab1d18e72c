package postgres

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestMapError(t *testing.T) {
	internal := errors.New("connection reset")
	tests := []struct {
		name  string
		err   error
		want  error // the sentinel, or internal itself
		field string
		msg   string
	}{
		{name: "no rows", err: pgx.ErrNoRows, want: ErrNotFound, msg: "app not found"},
		{name: "bad uuid", err: &pgconn.PgError{Code: "22P02"}, want: ErrNotFound, msg: "app not found"},
		{name: "unique name", err: &pgconn.PgError{Code: "23505", ConstraintName: "apps_name_key"}, want: ErrExists, field: "name", msg: "app already exists"},
		{name: "unique id", err: fmt.Errorf("insert: %w", &pgconn.PgError{Code: "23505", ConstraintName: "apps_pkey"}), want: ErrExists, field: "id", msg: "app already exists"},
		{name: "foreign key", err: &pgconn.PgError{Code: "23503", ConstraintName: "apps_release_fk"}, want: ErrInvalid, msg: "app refers to a missing object (apps_release_fk)"},
		{name: "other postgres error", err: &pgconn.PgError{Code: "40001"}},
		{name: "not postgres", err: internal, want: internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mapError(tt.err, "app")
			var e *Error
			if tt.msg == "" {
				if errors.As(got, &e) || !errors.Is(got, tt.err) {
					t.Fatalf("mapError() = %#v, want %v passed on", got, tt.err)
				}
				return
			}
			if !errors.As(got, &e) || !errors.Is(got, tt.want) || e.Field != tt.field || e.Message != tt.msg {
				t.Fatalf("mapError() = %#v, want an *Error around %v with field %q and message %q", got, tt.want, tt.field, tt.msg)
			}
		})
	}
	if mapError(nil, "app") != nil {
		t.Error("mapError(nil) is not nil")
	}
}
