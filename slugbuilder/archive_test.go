package slugbuilder

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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
			err := ExtractTar(&buf, t.TempDir(), Limits{})
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
	if err := ExtractTarGz(&buf, dst, Limits{}); err != nil {
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

// hugeFile is the size the bombs below claim: far more than any test disk.
const hugeFile = 100 << 30

// declaredHugeTar is a tar whose one file header claims hugeFile bytes and
// whose content never comes: an extractor that trusted the header would
// write until the stream ran out.
func declaredHugeTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "big", Mode: 0o644, Size: hugeFile, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sparseBombTar is a 4 KiB tar holding a GNU sparse file (PAX format 1.0)
// of hugeFile bytes, nearly all hole: archive/tar reads it back as
// hugeFile bytes of zeros. Go's tar.Writer cannot write sparse files, so
// the blocks are made by hand.
func sparseBombTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	records := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", "big") + paxRecord("GNU.sparse.realsize", strconv.Itoa(hugeFile))
	buf.Write(rawTarHeader("PaxHeaders/big", tar.TypeXHeader, len(records)))
	buf.Write(padBlock([]byte(records)))
	// The data: the sparse map (one region, the last byte), then the region.
	data := append(padBlock(fmt.Appendf(nil, "1\n%d\n1\n", hugeFile-1)), 'x')
	buf.Write(rawTarHeader("GNUSparseFile.0/big", tar.TypeReg, len(data)))
	buf.Write(padBlock(data))
	buf.Write(make([]byte, 1024)) // end of archive
	return buf.Bytes()
}

// rawTarHeader is a ustar header block.
func rawTarHeader(name string, typeflag byte, size int) []byte {
	b := make([]byte, 512)
	copy(b[0:], name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], fmt.Sprintf("%011o\x00", 0))
	b[156] = typeflag
	copy(b[257:], "ustar\x0000")
	copy(b[148:156], "        ") // the checksum counts its own field as spaces
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func padBlock(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// paxRecord is one "<length> key=value\n" record; the length counts itself.
func paxRecord(k, v string) string {
	n := len(k) + len(v) + 3
	for {
		r := fmt.Sprintf("%d %s=%s\n", n, k, v)
		if len(r) == n {
			return r
		}
		n = len(r)
	}
}

// manyEntriesTar is a tar of n empty files.
func manyEntriesTar(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := range n {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%d", i), Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// filesTar is a tar of files with the given sizes.
func filesTar(t *testing.T, sizes ...int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, size := range sizes {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%d", i), Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// diskUsage is the space the files under dir take (allocated blocks, so a
// sparse file counts at what it really holds).
func diskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

func TestExtractTarLimits(t *testing.T) {
	tests := []struct {
		name        string
		tar         []byte
		lim         Limits
		wantEntries bool // a LimitError on entries
		wantSize    bool // a LimitError on size
	}{
		{"declared huge file, default limits", declaredHugeTar(t), Limits{MaxBytes: DefaultMaxSourceBytes, MaxEntries: DefaultMaxSourceEntries}, false, true},
		{"sparse bomb, default limits", sparseBombTar(t), Limits{MaxBytes: DefaultMaxSourceBytes, MaxEntries: DefaultMaxSourceEntries}, false, true},
		{"too many entries", manyEntriesTar(t, 101), Limits{MaxEntries: 100}, true, false},
		{"as many entries as allowed", manyEntriesTar(t, 100), Limits{MaxEntries: 100}, false, false},
		{"files adding up to over the size", filesTar(t, 600, 600), Limits{MaxBytes: 1000}, false, true},
		{"files adding up to the size", filesTar(t, 500, 500), Limits{MaxBytes: 1000}, false, false},
		{"no limits", filesTar(t, 500, 500), Limits{}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			start := time.Now()
			err := ExtractTar(bytes.NewReader(tt.tar), dir, tt.lim)
			var lim *LimitError
			switch {
			case tt.wantEntries || tt.wantSize:
				if !errors.As(err, &lim) || lim.Entries != tt.wantEntries {
					t.Fatalf("err = %v, want a LimitError (entries: %v)", err, tt.wantEntries)
				}
			case err != nil:
				t.Fatalf("err = %v, want none", err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v to refuse", took)
			}
			if used := diskUsage(t, dir); used > 1<<20 {
				t.Errorf("the refused archive left %d bytes on disk", used)
			}
		})
	}
}

func TestLimitErrorMessages(t *testing.T) {
	tests := []struct {
		err  LimitError
		want string
	}{
		{LimitError{Limit: DefaultMaxSourceBytes}, "it unpacks to more than 2 GiB"},
		{LimitError{Limit: 1536 << 20}, "it unpacks to more than 1.5 GiB"},
		{LimitError{Limit: 1000}, "it unpacks to more than 1000 bytes"},
		{LimitError{Entries: true, Limit: DefaultMaxSourceEntries}, "it holds more than 200000 files and directories"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.err, got, tt.want)
		}
	}
}
