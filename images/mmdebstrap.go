package images

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Mmdebstrap makes Debian root filesystems with mmdebstrap from the host's
// apt configuration (deb.debian.org with updates and security, or whatever
// the host's apt proxy settings lead to).
type Mmdebstrap struct {
	// Path of the mmdebstrap program; default "mmdebstrap" on PATH.
	Path string
	// Stderr receives mmdebstrap's progress; nil keeps only the tail for
	// error messages.
	Stderr io.Writer
	// CacheDir, when set, keeps the downloaded packages between builds
	// (DefaultCacheDir for flynn-images): a root built again (its image
	// removed, or another root with the same packages) downloads only
	// what is new. Not part of a root's content tag: where a package came
	// from does not change the root.
	CacheDir string
}

// DefaultCacheDir is where flynn-images keeps mmdebstrap's downloads.
const DefaultCacheDir = "/var/cache/flynn/mmdebstrap"

var _ RootFS = (*Mmdebstrap)(nil)

// Args returns mmdebstrap's command line for d writing a tar to stdout;
// with a cache, the packages in cache go into the root's apt archive
// before apt runs, and the root's archive, every package it downloaded
// or found, goes out to out before mmdebstrap empties it.
func (m *Mmdebstrap) Args(d Debian, cache, out string) []string {
	args := []string{"--variant=" + d.Variant}
	if len(d.Packages) > 0 {
		args = append(args, "--include="+strings.Join(d.Packages, ","))
	}
	args = append(args, d.Options...)
	if cache != "" {
		args = append(args,
			// Keep the essential packages' debs in the archive, so that
			// they reach the cache as well.
			"--skip=essential/unlink",
			`--setup-hook=mkdir -p "$1"/var/cache/apt/archives/`,
			"--setup-hook=sync-in "+cache+" /var/cache/apt/archives/",
			"--customize-hook=sync-out /var/cache/apt/archives "+out)
	}
	return append(args, d.Suite, "-")
}

// WriteRootFS implements RootFS.
func (m *Mmdebstrap) WriteRootFS(ctx context.Context, d Debian, w io.Writer) error {
	prog := m.Path
	if prog == "" {
		prog = "mmdebstrap"
	}
	cache, out, keep, err := m.cache(d)
	if err != nil {
		return err
	}
	defer os.RemoveAll(out)
	cmd := exec.CommandContext(ctx, prog, m.Args(d, cache, out)...)
	// SIGTERM lets mmdebstrap remove its temporary root before it exits.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Stdout = w
	var tail tailBuffer
	cmd.Stderr = &tail
	if m.Stderr != nil {
		cmd.Stderr = io.MultiWriter(m.Stderr, &tail)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mmdebstrap %s: %w\n%s", d.Suite, err, tail.String())
	}
	return keep()
}

// cache returns the cache of d's suite and a new directory beside it for
// this build's packages, and keep, which moves them into the cache: each
// by a rename, so that builds running at once never see a half-written
// package. Without CacheDir, all three are empty or do nothing.
func (m *Mmdebstrap) cache(d Debian) (cache, out string, keep func() error, err error) {
	if m.CacheDir == "" {
		return "", "", func() error { return nil }, nil
	}
	cache = filepath.Join(m.CacheDir, d.Suite)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", "", nil, fmt.Errorf("package cache: %w", err)
	}
	out, err = os.MkdirTemp(m.CacheDir, ".out-"+d.Suite+"-")
	if err != nil {
		return "", "", nil, fmt.Errorf("package cache: %w", err)
	}
	keep = func() error {
		debs, err := filepath.Glob(filepath.Join(out, "*.deb"))
		if err != nil {
			return err
		}
		for _, deb := range debs {
			if err := os.Rename(deb, filepath.Join(cache, filepath.Base(deb))); err != nil {
				return fmt.Errorf("package cache: %w", err)
			}
		}
		return nil
	}
	return cache, out, keep, nil
}

// tailBuffer keeps the last few KiB written to it.
type tailBuffer struct{ buf bytes.Buffer }

func (t *tailBuffer) Write(p []byte) (int, error) {
	const keep = 4 << 10
	t.buf.Write(p)
	if t.buf.Len() > 2*keep {
		rest := t.buf.Bytes()[t.buf.Len()-keep:]
		t.buf = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return t.buf.String() }
