package slugbuilder

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Limits bound what ExtractTar unpacks, so that a small archive cannot
// fill the disk or the inode table (a tar bomb). A zero field sets no
// bound.
type Limits struct {
	// MaxBytes bounds the total size of the regular files, as their
	// headers declare it: a sparse file counts at its full size, and an
	// entry over the bound is refused before any of it is written.
	MaxBytes int64
	// MaxEntries bounds the number of entries of every kind.
	MaxEntries int
}

// LimitError says an archive went over its Limits.
type LimitError struct {
	// Entries is true when the number of entries was over the bound, else
	// the size was.
	Entries bool
	// Limit is the bound that was crossed.
	Limit int64
}

func (e *LimitError) Error() string {
	if e.Entries {
		return fmt.Sprintf("it holds more than %d files and directories", e.Limit)
	}
	return "it unpacks to more than " + formatSize(e.Limit)
}

// ExtractTar unpacks a tar stream into dir within lim. Entries that would
// land outside dir (absolute paths, "..", or through a symlink) are
// refused, because the tar comes from a user's push or from the network.
// An archive over lim fails with a *LimitError before the entry that
// crosses the bound is written; what came before it stays.
func ExtractTar(r io.Reader, dir string, lim Limits) error {
	tr := tar.NewReader(r)
	var entries int
	var size int64 // of the regular files so far; never over lim.MaxBytes
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if entries++; lim.MaxEntries > 0 && entries > lim.MaxEntries {
			return &LimitError{Entries: true, Limit: int64(lim.MaxEntries)}
		}
		if hdr.Typeflag == tar.TypeReg && lim.MaxBytes > 0 {
			if hdr.Size > lim.MaxBytes-size {
				return &LimitError{Limit: lim.MaxBytes}
			}
			size += hdr.Size
		}
		name := filepath.Clean(filepath.FromSlash(hdr.Name))
		if name == "." {
			continue
		}
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return fmt.Errorf("tar entry %q leaves the target directory", hdr.Name)
		}
		target := filepath.Join(dir, name)
		if err := checkNoSymlinkParent(dir, name); err != nil {
			return err
		}
		mode := fs.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode|0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := writeFile(target, tr, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			os.Remove(target)
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			src := filepath.Clean(filepath.FromSlash(hdr.Linkname))
			if filepath.IsAbs(src) || strings.HasPrefix(src, "..") {
				return fmt.Errorf("tar hard link %q leaves the target directory", hdr.Linkname)
			}
			os.Remove(target)
			if err := os.Link(filepath.Join(dir, src), target); err != nil {
				return err
			}
		default:
			// Devices, FIFOs and the like have no place in an app.
		}
	}
}

// checkNoSymlinkParent refuses a path whose parent directories inside dir
// include a symlink, which could point anywhere.
func checkNoSymlinkParent(dir, name string) error {
	parts := strings.Split(filepath.Dir(name), string(filepath.Separator))
	p := dir
	for _, part := range parts {
		if part == "." {
			break
		}
		p = filepath.Join(p, part)
		info, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("tar entry %q goes through the symlink %s", name, p)
		}
	}
	return nil
}

func writeFile(path string, r io.Reader, mode fs.FileMode) error {
	os.Remove(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// ExtractTarGz unpacks a gzipped tar stream into dir within lim.
func ExtractTarGz(r io.Reader, dir string, lim Limits) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("read gzip: %w", err)
	}
	defer zr.Close()
	return ExtractTar(zr, dir, lim)
}

// formatSize writes a byte count for people: "2 GiB", "1.5 MiB", "300 bytes".
func formatSize(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	v, unit := float64(n)/1024, units[0]
	for _, u := range units[1:] {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") + " " + unit
}

// WriteTarGz writes the tree under dir as a gzipped tar with paths relative
// to dir. skip, when set, leaves out an entry (and a directory's whole tree);
// it gets the slash-separated relative path.
func WriteTarGz(w io.Writer, dir string, skip func(rel string, isDir bool) bool) error {
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skip != nil && skip(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var link string
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		} else if !info.Mode().IsRegular() && !info.IsDir() {
			return nil // sockets, FIFOs
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("archive %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}
