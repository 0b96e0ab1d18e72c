package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/blobstore/signed"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
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

func (f *fakeBackend) List(context.Context, string, string, int) ([]blobstore.Info, error) {
	f.calls++
	return nil, f.err
}

func (f *fakeBackend) ClaimNonce(context.Context, string, time.Time) error {
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
		{"internal error is a bare 500", http.MethodGet, "/x", "k", internal, http.StatusInternalServerError, true},
		{"not found", http.MethodGet, "/x", "k", blobstore.ErrNotFound, http.StatusNotFound, true},
		{"get without key", http.MethodGet, "/x", "", nil, http.StatusUnauthorized, false},
		{"head with wrong key", http.MethodHead, "/x", "nope", nil, http.StatusUnauthorized, false},
		{"wrapped not found", http.MethodDelete, "/x", "k", fmt.Errorf("delete x: %w", blobstore.ErrNotFound), http.StatusNotFound, true},
		{"too large from the backend", http.MethodPut, "/x", "k", blobstore.ErrTooLarge, http.StatusRequestEntityTooLarge, true},
		{"truncated upload", http.MethodPut, "/x", "k", io.ErrUnexpectedEOF, http.StatusBadRequest, true},
		{"bad path", http.MethodGet, "/a/../b", "", nil, http.StatusBadRequest, false},
		{"put without key", http.MethodPut, "/x", "", nil, http.StatusUnauthorized, false},
		{"delete with wrong key", http.MethodDelete, "/x", "nope", nil, http.StatusUnauthorized, false},
		{"post", http.MethodPost, "/x", "k", nil, http.StatusMethodNotAllowed, false},
		{"list", http.MethodGet, "/?prefix=apps/", "k", nil, http.StatusOK, true},
		{"list without key", http.MethodGet, "/?prefix=apps/", "", nil, http.StatusUnauthorized, false},
		{"list with a bad limit", http.MethodGet, "/?limit=-1", "k", nil, http.StatusBadRequest, false},
		{"list with a bad prefix from the backend", http.MethodGet, "/?prefix=a%25", "k", &blobstore.PathError{Path: "a%", Reason: "no"}, http.StatusBadRequest, true},
		{"put on the root", http.MethodPut, "/", "k", nil, http.StatusBadRequest, false},
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

// TestSignedURLs checks how signed requests are answered: what a signature
// allows reaches the backend, anything else is a JSON 401 that never does,
// and a used nonce is a 409.
func TestSignedURLs(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	sign := func(method, path string, expires time.Time) string {
		q, err := signed.Sign("k", method, path, expires)
		if err != nil {
			t.Fatal(err)
		}
		return "/" + path + "?" + q.Encode()
	}
	later := now.Add(time.Minute)
	tests := []struct {
		name        string
		method      string
		target      string
		backendErr  error
		wantStatus  int
		wantBackend bool
		wantMessage string
	}{
		{"signed get", http.MethodGet, sign("GET", "apps/a/slug", later), blobstore.ErrNotFound, http.StatusNotFound, true, ""},
		{"signed put", http.MethodPut, sign("PUT", "apps/a/slug", later), nil, http.StatusOK, true, ""},
		{"signed delete", http.MethodDelete, sign("DELETE", "apps/a/slug", later), nil, http.StatusNoContent, true, ""},
		{"used nonce", http.MethodPut, sign("PUT", "apps/a/slug", later), blobstore.ErrNonceUsed, http.StatusConflict, true, "already used"},
		{"get with a put signature", http.MethodGet, sign("PUT", "apps/a/slug", later), nil, http.StatusUnauthorized, false, "does not allow GET /apps/a/slug"},
		{"head with a get signature", http.MethodHead, sign("GET", "apps/a/slug", later), nil, http.StatusUnauthorized, false, ""},
		{"another app's slug", http.MethodGet, strings.Replace(sign("GET", "apps/a/slug", later), "/apps/a/", "/apps/b/", 1), nil, http.StatusUnauthorized, false, "does not allow"},
		{"expired", http.MethodGet, sign("GET", "apps/a/slug", now), nil, http.StatusUnauthorized, false, "expired"},
		{"malformed", http.MethodGet, "/apps/a/slug?sig=x", nil, http.StatusUnauthorized, false, "malformed"},
		{"no credentials", http.MethodGet, "/apps/a/slug", nil, http.StatusUnauthorized, false, "no signed URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &fakeBackend{err: tt.backendErr}
			h := NewHandler(b, Options{AuthKey: "k", Now: func() time.Time { return now }}, slog.New(slog.DiscardHandler))
			req := httptest.NewRequest(tt.method, "http://blobstore"+tt.target, strings.NewReader("body"))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", w.Code, tt.wantStatus, w.Body)
			}
			if got := b.calls > 0; got != tt.wantBackend {
				t.Fatalf("backend called = %v, want %v", got, tt.wantBackend)
			}
			if tt.wantStatus >= 400 && tt.method != http.MethodHead {
				var apiErr httpjson.Error
				if err := json.Unmarshal(w.Body.Bytes(), &apiErr); err != nil || apiErr.Code == "" || !strings.Contains(apiErr.Message, tt.wantMessage) {
					t.Fatalf("body %s (%v): want a JSON error saying %q", w.Body, err, tt.wantMessage)
				}
			}
		})
	}
}
