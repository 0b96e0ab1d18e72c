// Package tartest builds tar archives in tests: the app trees, slugs,
// build contexts and image archives that tests feed to the code that
// reads them.
package tartest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"maps"
	"slices"
	"strings"
	"testing"
)

// File is one entry of an archive: a regular file, or a directory when
// Name ends in "/". Mode defaults to 0644 (0755 for a directory).
type File struct {
	Name string
	Data []byte
	Mode int64
}

// Of returns a tar of files, in their order; it fails t when the archive
// cannot be written.
func Of(t testing.TB, files ...File) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.Name, Mode: f.Mode, Size: int64(len(f.Data)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(f.Name, "/") {
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
			if hdr.Mode == 0 {
				hdr.Mode = 0o755
			}
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Map returns a tar of files (name → content), in the names' order, each
// with mode.
func Map(t testing.TB, files map[string]string, mode int64) []byte {
	t.Helper()
	var list []File
	for _, name := range slices.Sorted(maps.Keys(files)) {
		list = append(list, File{Name: name, Data: []byte(files[name]), Mode: mode})
	}
	return Of(t, list...)
}

// Gzip returns data gzipped, as a slug is.
func Gzip(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
