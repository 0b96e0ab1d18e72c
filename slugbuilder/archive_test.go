package slugbuilder

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExtractTarRefusesEscapes(t *testing.T) {
	tests := []struct {
		name    string
		entries []tar.Header
	}{
		{"dot dot", []tar.Header{{Name: "../evil", Typeflag: tar.TypeReg}}},
		{"absolute", []tar.Header{{Name: "/etc/evil", Typeflag: tar.TypeReg}}},
		{"through a symlink", []tar.Header{{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/tmp"}, {Name: "link/evil", Typeflag: tar.TypeReg}}},
		{"hard link out", []tar.Header{{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range tt.entries {
				h.Mode = 0o644
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
			}
			tw.Close()
			err := ExtractTar(&buf, t.TempDir())
			if err == nil || !(strings.Contains(err.Error(), "leaves") || strings.Contains(err.Error(), "symlink")) {
				t.Errorf("err = %v, want a refusal", err)
			}
		})
	}
}

func TestTarGzRoundTrip(t *testing.T) {
	src := t.TempDir()
	writeApp(t, src, map[string]string{"a/b.txt": "b", "run.sh": "#!/bin/sh", ".git/HEAD": "x"})
	os.Chmod(filepath.Join(src, "run.sh"), 0o755)
	os.Symlink("a/b.txt", filepath.Join(src, "link"))
	var buf bytes.Buffer
	if err := WriteTarGz(&buf, src, slugSkip); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := ExtractTarGz(&buf, dst); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dst, "link")); got != "b" {
		t.Errorf("link reads %q", got)
	}
	if info, err := os.Stat(filepath.Join(dst, "run.sh")); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("run.sh mode = %v, %v; want 0755", info.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(dst, ".git")); err == nil {
		t.Error(".git was archived")
	}
}
