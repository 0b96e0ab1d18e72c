// Package blobstore holds the API types of Flynn's blob storage: the
// metadata of a stored blob, the errors every backend reports, the rules a
// blob path must follow, and the Backend contract that the filesystem
// (blobstore/fs) and Postgres (blobstore/pg) stores implement. It imports
// only the standard library so that the server, the Go client and both
// backends share one definition.
//
// The HTTP API, served by blobstore/server (service "blobstore"):
//
//	PUT    /<path>   store the request body under path
//	GET    /<path>   the blob; Range, If-None-Match, If-Range supported
//	HEAD   /<path>   the headers of GET without the body
//	DELETE /<path>   remove the blob
//	GET    /?prefix=<p>&after=<path>&limit=<n>
//	                 the Info of the blobs whose path starts with p, in
//	                 path order, after the given path, at most n (at most
//	                 MaxListLimit); a JSON array, empty past the last
//
// Every request needs either the cluster key (HTTP basic-auth password),
// which allows everything, or a signed URL (blobstore/signed), which allows
// one method on one path until it expires; reads included, so that one
// app cannot fetch another's slug. Listing needs the key. A signed PUT or DELETE URL works once:
// the backend records its nonce (ClaimNonce). Anything else is refused
// with 401, a reused signed URL with 409.
//
// A blob's ETag is the hex SHA-256 of its content. Writes are atomic: a
// reader sees the old blob or the new one, never a mix, and an aborted
// upload leaves nothing behind.
package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Info describes one stored blob.
type Info struct {
	// Path is the blob's validated path, without the leading slash.
	Path string `json:"path"`
	// Size is the content length in bytes.
	Size int64 `json:"size"`
	// ETag is the lowercase hex SHA-256 of the content (unquoted).
	ETag string `json:"etag"`
	// ModTime is when this version of the blob was written.
	ModTime time.Time `json:"modified"`
}

// Errors reported by backends and the client. Backends wrap them with
// context; test with errors.Is.
var (
	// ErrNotFound means no blob is stored under the path.
	ErrNotFound = errors.New("blob not found")
	// ErrTooLarge means an upload went over the configured size limit.
	ErrTooLarge = errors.New("blob too large")
	// ErrNonceUsed means a single-use signed URL was used before.
	ErrNonceUsed = errors.New("signed URL already used")
)

// Backend stores blobs. It is shared by the HTTP server and the behaviour
// suite that every implementation passes (blobstore/blobstoretest), which is
// why it lives here rather than beside one consumer.
//
// Implementations validate paths themselves (ValidatePath) even though the
// server already has, so that no caller can reach outside the store.
type Backend interface {
	// Put streams r into the blob at path and replaces any previous version
	// atomically once r is drained. If reading r fails, nothing changes and
	// the error is returned wrapped. Concurrent Puts to one path end with
	// exactly one of them stored whole.
	Put(ctx context.Context, path string, r io.Reader) (Info, error)
	// Open returns the current version of the blob at path. The content stays
	// readable as that version until it is closed, even if the blob is
	// overwritten or deleted meanwhile; a backend may bound how long after
	// that (the Postgres one's Options.KeepReplaced, an hour by default),
	// and past it a read fails rather than return another version's bytes.
	// ctx bounds the whole read, not just the call.
	Open(ctx context.Context, path string) (io.ReadSeekCloser, Info, error)
	// Delete removes the blob at path; ErrNotFound if there is none.
	Delete(ctx context.Context, path string) error
	// List returns the blobs whose path starts with prefix and sorts
	// after after, in bytewise path order, at most limit of them (1 to
	// MaxListLimit). An empty prefix lists every blob, an empty after
	// starts at the first; a page shorter than limit is the last.
	// prefix and after are checked with ValidatePrefix.
	List(ctx context.Context, prefix, after string, limit int) ([]Info, error)
	// ClaimNonce records the nonce of a single-use signed URL that is
	// valid until expires, durably. It returns ErrNonceUsed when the nonce
	// was claimed before; of concurrent claims of one nonce, across every
	// process sharing the store, exactly one succeeds. A claim may forget
	// nonces that expired before it (their URLs no longer verify), and
	// must forget those that expired more than an hour before it, so the
	// record stays bounded. Nonces are checked with ValidateNonce.
	ClaimNonce(ctx context.Context, nonce string, expires time.Time) error
}

// MaxListLimit bounds the blobs one List call returns, and so the size of
// one listing reply.
const MaxListLimit = 1000

// MaxNonceLen bounds the length of a signed URL's nonce.
const MaxNonceLen = 64

// ValidateNonce checks a signed URL's nonce: 16 to MaxNonceLen letters,
// digits, '-' or '_', so that backends may use it as a file name or key
// as it is.
func ValidateNonce(n string) error {
	if len(n) < 16 || len(n) > MaxNonceLen {
		return fmt.Errorf("nonce must be 16 to %d characters long, not %d", MaxNonceLen, len(n))
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("nonce holds the character %q", c)
		}
	}
	return nil
}
