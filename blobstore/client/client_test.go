package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/openflynn/flynn/blobstore"
)

func TestURL(t *testing.T) {
	tests := []struct{ base, path, want string }{
		{"http://blobstore.discoverd:5001", "apps/a/slug.tgz", "http://blobstore.discoverd:5001/apps/a/slug.tgz"},
		{"http://blobstore.discoverd:5001/", "/apps/a/slug.tgz", "http://blobstore.discoverd:5001/apps/a/slug.tgz"},
	}
	for _, tt := range tests {
		if got := New(tt.base, "").URL(tt.path); got != tt.want {
			t.Errorf("New(%q).URL(%q) = %q, want %q", tt.base, tt.path, got, tt.want)
		}
	}
}

// TestPutFileSendsLength checks that a file is uploaded with its length
// (from the current offset), so that the server can refuse an oversized
// one before any byte moves, and that the key goes along.
func TestPutFileSendsLength(t *testing.T) {
	var gotLength int64
	var gotBody []byte
	var gotKey string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotLength = r.ContentLength
		gotBody, _ = io.ReadAll(r.Body)
		_, gotKey, _ = r.BasicAuth()
		_ = json.NewEncoder(w).Encode(blobstore.Info{Path: "x", Size: int64(len(gotBody))})
	}))
	defer srv.Close()

	name := filepath.Join(t.TempDir(), "slug.tgz")
	if err := os.WriteFile(name, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(4, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	info, err := New(srv.URL, "k").Put(context.Background(), "x", f)
	if err != nil {
		t.Fatal(err)
	}
	if gotLength != 6 || string(gotBody) != "456789" || info.Size != 6 || gotKey != "k" {
		t.Fatalf("server saw length %d, body %q, key %q; client got %+v", gotLength, gotBody, gotKey, info)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		status int
		want   error
	}{
		{http.StatusNotFound, blobstore.ErrNotFound},
		{http.StatusRequestEntityTooLarge, blobstore.ErrTooLarge},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tt.status)
		}))
		_, _, err := New(srv.URL, "").Get(context.Background(), "x")
		srv.Close()
		if !errors.Is(err, tt.want) {
			t.Errorf("status %d: err = %v, want %v", tt.status, err, tt.want)
		}
	}
}

// TestListPages checks that List asks page after page, each after the last
// path of the one before, until an empty one, and sends the key.
func TestListPages(t *testing.T) {
	stored := []string{"apps/a/cache.tgz", "apps/a/slug-1.tgz", "apps/a/slug-2.tgz", "apps/a/slug-3.tgz", "apps/a/slug-4.tgz"}
	var requests []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		requests = append(requests, q.Get("after"))
		if _, key, _ := r.BasicAuth(); key != "k" || r.URL.Path != "/" || q.Get("prefix") != "apps/a/" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		page := []blobstore.Info{} // two at most: a server with pages smaller than asked for
		for _, p := range stored {
			if p > q.Get("after") && len(page) < 2 {
				page = append(page, blobstore.Info{Path: p})
			}
		}
		_ = json.NewEncoder(w).Encode(page)
	}))
	defer srv.Close()
	list, err := New(srv.URL, "k").List(context.Background(), "apps/a/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, info := range list {
		got = append(got, info.Path)
	}
	if !slices.Equal(got, stored) {
		t.Errorf("listed %q, want %q", got, stored)
	}
	if want := []string{"", "apps/a/slug-1.tgz", "apps/a/slug-3.tgz", "apps/a/slug-4.tgz"}; !slices.Equal(requests, want) {
		t.Errorf("asked after %q, want %q", requests, want)
	}
}
