package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/pkg/authkey"
)

// fakeBackend records calls and fails every one with err.
type fakeBackend struct {
	err   error
	calls int
}

var _ blobstore.Backend = (*fakeBackend)(nil)

func (f *fakeBackend) Put(context.Context, string, io.Reader) (blobstore.Info, error) {
	f.calls++
	return blobstore.Info{}, f.err
}

func (f *fakeBackend) Open(context.Context, string) (io.ReadSeekCloser, blobstore.Info, error) {
	f.calls++
	return nil, blobstore.Info{}, f.err
}

func (f *fakeBackend) Delete(context.Context, string) error {
	f.calls++
	return f.err
}

// TestErrorMapping checks the one table from errors to statuses, and that
// requests refused up front never reach the backend.
func TestErrorMapping(t *testing.T) {
	internal := errors.New("disk on fire at /var/lib/secret")
	tests := []struct {
		name        string
		method      string
		target      string
		key         string
		backendErr  error
		wantStatus  int
		wantBackend bool
	}{
		{"internal error is a bare 500", http.MethodGet, "/x", "", internal, http.StatusInternalServerError, true},
		{"not found", http.MethodGet, "/x", "", blobstore.ErrNotFound, http.StatusNotFound, true},
		{"wrapped not found", http.MethodDelete, "/x", "k", fmt.Errorf("delete x: %w", blobstore.ErrNotFound), http.StatusNotFound, true},
		{"too large from the backend", http.MethodPut, "/x", "k", blobstore.ErrTooLarge, http.StatusRequestEntityTooLarge, true},
		{"truncated upload", http.MethodPut, "/x", "k", io.ErrUnexpectedEOF, http.StatusBadRequest, true},
		{"bad path", http.MethodGet, "/a/../b", "", nil, http.StatusBadRequest, false},
		{"put without key", http.MethodPut, "/x", "", nil, http.StatusUnauthorized, false},
		{"delete with wrong key", http.MethodDelete, "/x", "nope", nil, http.StatusUnauthorized, false},
		{"post", http.MethodPost, "/x", "k", nil, http.StatusMethodNotAllowed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &fakeBackend{err: tt.backendErr}
			h := NewHandler(b, Options{AuthKey: "k"}, slog.New(slog.DiscardHandler))
			req := httptest.NewRequest(tt.method, "http://blobstore"+tt.target, strings.NewReader("body"))
			authkey.Set(req, tt.key)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", w.Code, tt.wantStatus, w.Body)
			}
			if got := b.calls > 0; got != tt.wantBackend {
				t.Fatalf("backend called = %v, want %v", got, tt.wantBackend)
			}
			if strings.Contains(w.Body.String(), "secret") {
				t.Fatalf("reply leaks internals: %s", w.Body)
			}
		})
	}
}

// TestDeclaredLengthOverLimit checks that an upload announcing a length
// over the limit is refused before the backend sees it.
func TestDeclaredLengthOverLimit(t *testing.T) {
	b := &fakeBackend{}
	h := NewHandler(b, Options{MaxSize: 10}, slog.New(slog.DiscardHandler))
	req := httptest.NewRequest(http.MethodPut, "http://blobstore/x", strings.NewReader("eleven char"))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusRequestEntityTooLarge || b.calls != 0 {
		t.Fatalf("status %d, backend calls %d; want 413, 0", w.Code, b.calls)
	}
}
