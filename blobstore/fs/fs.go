// Package fs stores blobs as files in a directory, the blobstore's default
// backend.
//
// Layout under the root directory:
//
//	blobs/<h[:2]>/<h>   one file per blob, h = hex SHA-256 of the blob path
//	tmp/                uploads in progress
//	nonces/<hour>/<n>   claimed nonces of single-use signed URLs, by the
//	                    Unix hour their URL expires in
//
// Naming files by the hash of their path keeps user input out of file names
// altogether (no traversal, no file-versus-directory clashes between "a"
// and "a/b", no empty directories to prune) at the cost of a directory
// listing that does not show paths; the header of each file does.
//
// Each blob file is a header followed by the content (see header.go). An
// upload streams into a temporary file while hashing, writes the header,
// syncs and renames the file into place, so readers see the old or the new
// version whole, concurrent writers end with the last rename, and a failed
// upload only removes its temporary file. An open reader keeps its version
// (the inode) even when the blob is overwritten or deleted.
//
// A nonce is claimed by creating its empty file with O_EXCL, which the
// kernel makes atomic; grouping the files by expiry hour lets a claim
// forget expired nonces by removing whole directories.
//
// One process owns a root directory: New removes what an earlier process
// left in tmp/.
package fs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/openflynn/flynn/blobstore"
)

// copyBufferSize is the size of the buffer an upload streams through; large
// enough that syscalls and hashing calls are amortised, small enough to keep
// memory per upload constant and low.
const copyBufferSize = 256 << 10

// Store is a filesystem blob backend.
type Store struct {
	blobs  string
	tmp    string
	nonces string
}

var _ blobstore.Backend = (*Store)(nil)

// New opens (creating if needed) a store rooted at dir and clears uploads
// that an earlier process left unfinished.
func New(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("fs store: no directory given")
	}
	s := &Store{blobs: filepath.Join(dir, "blobs"), tmp: filepath.Join(dir, "tmp"), nonces: filepath.Join(dir, "nonces")}
	if err := os.RemoveAll(s.tmp); err != nil {
		return nil, fmt.Errorf("fs store: clear unfinished uploads: %w", err)
	}
	for _, d := range []string{s.blobs, s.tmp, s.nonces} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("fs store: %w", err)
		}
	}
	return s, nil
}

// TempDir returns the directory holding uploads in progress, so tests can
// check that aborted uploads leave nothing there.
func (s *Store) TempDir() string { return s.tmp }

// file returns the path of the file that holds blob p.
func (s *Store) file(p string) string {
	sum := sha256.Sum256([]byte(p))
	h := hex.EncodeToString(sum[:])
	return filepath.Join(s.blobs, h[:2], h)
}

// Put implements blobstore.Backend.
func (s *Store) Put(ctx context.Context, p string, r io.Reader) (blobstore.Info, error) {
	if err := blobstore.ValidatePath(p); err != nil {
		return blobstore.Info{}, err
	}
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return blobstore.Info{}, fmt.Errorf("put %s: %w", p, err)
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	hdrLen := int64(headerLen(p))
	if _, err := f.Seek(hdrLen, io.SeekStart); err != nil {
		return blobstore.Info{}, fmt.Errorf("put %s: %w", p, err)
	}
	h := sha256.New()
	size, err := copyHashing(ctx, f, h, r)
	if err != nil {
		return blobstore.Info{}, fmt.Errorf("put %s: %w", p, err)
	}
	info := blobstore.Info{Path: p, Size: size, ETag: hex.EncodeToString(h.Sum(nil)), ModTime: time.Now().UTC()}
	if _, err := f.WriteAt(encodeHeader(info), 0); err != nil {
		return blobstore.Info{}, fmt.Errorf("put %s: write header: %w", p, err)
	}
	// Sync before the rename, or a crash could leave the new name pointing
	// at a file whose data never reached the disk.
	if err := f.Sync(); err != nil {
		return blobstore.Info{}, fmt.Errorf("put %s: sync: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return blobstore.Info{}, fmt.Errorf("put %s: %w", p, err)
	}
	dst := s.file(p)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return blobstore.Info{}, fmt.Errorf("put %s: %w", p, err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return blobstore.Info{}, fmt.Errorf("put %s: %w", p, err)
	}
	committed = true
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return blobstore.Info{}, fmt.Errorf("put %s: %w", p, err)
	}
	return info, nil
}

// copyHashing copies r to both f and h and returns the byte count. It
// checks ctx between reads so a cancelled request stops promptly even when
// r keeps delivering.
func copyHashing(ctx context.Context, f *os.File, h hash.Hash, r io.Reader) (int64, error) {
	buf := make([]byte, copyBufferSize)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, rerr := r.Read(buf)
		if m > 0 {
			h.Write(buf[:m])
			if _, err := f.Write(buf[:m]); err != nil {
				return n, err
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// Open implements blobstore.Backend. ctx is unused: reads are local and
// bounded by the file.
func (s *Store) Open(_ context.Context, p string) (io.ReadSeekCloser, blobstore.Info, error) {
	if err := blobstore.ValidatePath(p); err != nil {
		return nil, blobstore.Info{}, err
	}
	f, err := os.Open(s.file(p))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, blobstore.Info{}, fmt.Errorf("open %s: %w", p, blobstore.ErrNotFound)
	}
	if err != nil {
		return nil, blobstore.Info{}, fmt.Errorf("open %s: %w", p, err)
	}
	info, hdrLen, err := readHeader(f, p)
	if err != nil {
		f.Close()
		return nil, blobstore.Info{}, fmt.Errorf("open %s: %w", p, err)
	}
	c := &content{f: f, offset: hdrLen}
	if _, err := c.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, blobstore.Info{}, fmt.Errorf("open %s: %w", p, err)
	}
	return c, info, nil
}

// Delete implements blobstore.Backend.
func (s *Store) Delete(_ context.Context, p string) error {
	if err := blobstore.ValidatePath(p); err != nil {
		return err
	}
	name := s.file(p)
	err := os.Remove(name)
	if errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", p, blobstore.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", p, err)
	}
	return syncDir(filepath.Dir(name))
}

// List implements blobstore.Backend. Files are named by the hash of their
// path, so it reads the header of every blob file, whatever the prefix:
// a listing costs one small read per blob in the store. That suits its
// use, an occasional sweep by a collector, not a hot path.
func (s *Store) List(_ context.Context, prefix, after string, limit int) ([]blobstore.Info, error) {
	for _, p := range []string{prefix, after} {
		if err := blobstore.ValidatePrefix(p); err != nil {
			return nil, err
		}
	}
	limit = max(1, min(limit, blobstore.MaxListLimit))
	dirs, err := os.ReadDir(s.blobs)
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	var list []blobstore.Info
	for _, d := range dirs {
		files, err := os.ReadDir(filepath.Join(s.blobs, d.Name()))
		if err != nil {
			return nil, fmt.Errorf("list %q: %w", prefix, err)
		}
		for _, f := range files {
			info, err := statBlob(filepath.Join(s.blobs, d.Name(), f.Name()))
			if errors.Is(err, iofs.ErrNotExist) {
				continue // deleted since the directory was read
			}
			if err != nil {
				return nil, fmt.Errorf("list %q: %s: %w", prefix, f.Name(), err)
			}
			if strings.HasPrefix(info.Path, prefix) && info.Path > after {
				list = append(list, info)
			}
		}
	}
	slices.SortFunc(list, func(a, b blobstore.Info) int { return strings.Compare(a.Path, b.Path) })
	return list[:min(limit, len(list))], nil
}

// statBlob returns the info in the header of the blob file name.
func statBlob(name string) (blobstore.Info, error) {
	f, err := os.Open(name)
	if err != nil {
		return blobstore.Info{}, err
	}
	defer f.Close()
	info, _, err := readAnyHeader(f)
	return info, err
}

// ClaimNonce implements blobstore.Backend.
func (s *Store) ClaimNonce(_ context.Context, nonce string, expires time.Time) error {
	if err := blobstore.ValidateNonce(nonce); err != nil {
		return err
	}
	if err := s.forgetNonces(time.Now()); err != nil {
		return err
	}
	bucket := filepath.Join(s.nonces, strconv.FormatInt(expires.Unix()/3600, 10))
	if err := os.MkdirAll(bucket, 0o755); err != nil {
		return fmt.Errorf("claim nonce: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(bucket, nonce), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, iofs.ErrExist) {
		return fmt.Errorf("claim nonce %s: %w", nonce, blobstore.ErrNonceUsed)
	}
	if err != nil {
		return fmt.Errorf("claim nonce: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("claim nonce: %w", err)
	}
	// Durable before the upload it admits: after a crash, the URL must
	// still count as used.
	if err := syncDir(bucket); err != nil {
		return fmt.Errorf("claim nonce: %w", err)
	}
	return syncDir(s.nonces)
}

// forgetNonces removes the hours of nonces whose URLs all expired before
// now.
func (s *Store) forgetNonces(now time.Time) error {
	entries, err := os.ReadDir(s.nonces)
	if err != nil {
		return fmt.Errorf("forget expired nonces: %w", err)
	}
	for _, e := range entries {
		hour, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || (hour+1)*3600 > now.Unix() {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.nonces, e.Name())); err != nil {
			return fmt.Errorf("forget expired nonces: %w", err)
		}
	}
	return nil
}

// content presents the part of a blob file after its header as a file of
// its own. Read reads the file directly, since the content runs to the end
// of the file; Seek shifts offsets past the header. Because it also exposes
// the file's descriptor (syscall.Conn), net/http sends it with sendfile(2),
// straight from the page cache to the socket.
type content struct {
	f      *os.File
	offset int64
}

var _ syscall.Conn = (*content)(nil)

func (c *content) Read(b []byte) (int, error) { return c.f.Read(b) }

func (c *content) Seek(off int64, whence int) (int64, error) {
	if whence == io.SeekStart {
		if off < 0 {
			return 0, errors.New("seek before start of blob")
		}
		off += c.offset
	}
	pos, err := c.f.Seek(off, whence)
	if err != nil {
		return 0, err
	}
	if pos < c.offset {
		// Only a negative relative seek gets here; undo it.
		if _, err := c.f.Seek(c.offset, io.SeekStart); err != nil {
			return 0, err
		}
		return 0, errors.New("seek before start of blob")
	}
	return pos - c.offset, nil
}

func (c *content) Close() error { return c.f.Close() }

// SyscallConn exposes the file descriptor for sendfile(2); reads through it
// start at the current (header-shifted) offset, as Read does.
func (c *content) SyscallConn() (syscall.RawConn, error) { return c.f.SyscallConn() }

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
