package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

var created = time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC)

// sample writes an archive of three entries, one of them a database dump.
func sample(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, created)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	for _, e := range []struct {
		name string
		data []byte
	}{{RolesName, []byte("-- roles\n")}, {"databases/app_1.dump", big}, {"empty", nil}} {
		if err := w.Add(e.name, int64(len(e.data)), bytes.NewReader(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close([]Database{{Name: "app_1", Kind: KindApp, Owner: "app_1", Entry: "databases/app_1.dump"}}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	data := sample(t)
	dir := NewDir(t.TempDir())
	h, m, err := Read(bytes.NewReader(data), dir)
	if err != nil {
		t.Fatal(err)
	}
	if h.Format != Format || h.Version != Version || !h.CreatedAt.Equal(created) {
		t.Fatalf("header %+v", h)
	}
	if len(m.Entries) != 3 || len(m.Databases) != 1 || m.Databases[0].Owner != "app_1" {
		t.Fatalf("manifest %+v", m)
	}
	p, ok := dir.Path("databases/app_1.dump")
	if !ok {
		t.Fatal("no file for the dump")
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := m.Entry("databases/app_1.dump"); int64(len(got)) != e.Size || e.Size != 65536 {
		t.Fatalf("dump file has %d bytes, entry says %d", len(got), e.Size)
	}
	// Gzipped, as someone may keep it.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	if _, _, err := Read(&gz, Discard); err != nil {
		t.Fatalf("gzipped archive: %v", err)
	}
}

// TestTruncated cuts the archive everywhere that matters: each cut is
// refused as incomplete (or, cut inside a tar header, as unreadable), never
// accepted.
func TestTruncated(t *testing.T) {
	data := sample(t)
	// The end-of-archive blocks may go: everything is there before them.
	whole := len(data) - 1024
	for cut := 0; cut < whole; cut += 97 {
		_, _, err := Read(bytes.NewReader(data[:cut]), Discard)
		if err == nil {
			t.Fatalf("archive cut at %d of %d bytes accepted", cut, len(data))
		}
		if cut < 512 {
			// Not even the header's tar block: nothing says it is a backup.
			if !errors.Is(err, ErrNotBackup) && !errors.Is(err, ErrIncomplete) {
				t.Fatalf("cut at %d: %v", cut, err)
			}
			continue
		}
		if !errors.Is(err, ErrIncomplete) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut at %d: %v, want ErrIncomplete", cut, err)
		}
	}
	if _, _, err := Read(bytes.NewReader(data[:whole]), Discard); err != nil {
		t.Fatalf("archive without its end blocks: %v", err)
	}
}

func TestRefused(t *testing.T) {
	data := sample(t)
	random := make([]byte, 1<<16)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	flipped := bytes.Clone(data)
	// A byte inside the big entry's content (after the header entry's
	// blocks and the PAX and tar headers of the dump).
	i := bytes.Index(flipped, []byte("0123456789abcdef"))
	flipped[i+100] ^= 1

	tests := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"empty file", nil, ErrNotBackup, "empty"},
		{"random bytes", random, ErrNotBackup, "not a tar archive"},
		{"text", []byte(strings.Repeat("hello world\n", 100)), ErrNotBackup, "not a tar archive"},
		{"foreign tar", tarOf(t, map[string]string{"etc/passwd": "root:x:0:0"}), ErrNotBackup, `first entry is "etc/passwd"`},
		{"foreign header", tarOf(t, map[string]string{HeaderName: `{"format":"other"}`}), ErrNotBackup, "format"},
		{"newer version", tarOf(t, map[string]string{HeaderName: `{"format":"flynn-backup","version":2}`}), ErrNewerVersion, "version 2"},
		{"no manifest", tarOf(t, map[string]string{HeaderName: `{"format":"flynn-backup","version":1}`}), ErrIncomplete, "without its manifest"},
		{"missing entry", tarOf(t, map[string]string{
			HeaderName:   `{"format":"flynn-backup","version":1}`,
			ManifestName: `{"entries":[{"name":"roles.sql","size":1,"sha256":"x"}]}`,
		}), ErrIncomplete, `"roles.sql"`},
		{"flipped byte", flipped, ErrCorrupt, "SHA-256"},
		{"extra entry", withExtra(t, data), ErrCorrupt, `"extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Read(bytes.NewReader(tt.data), Discard)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want %v mentioning %q", err, tt.want, tt.msg)
			}
		})
	}
}

// tarOf writes a tar of files, the header entry first when there is one
// and the manifest last.
func tarOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name, content string) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Size: int64(len(content)), Mode: 0o600, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, content)
	}
	if c, ok := files[HeaderName]; ok {
		add(HeaderName, c)
	}
	for name, c := range files {
		if name != HeaderName && name != ManifestName {
			add(name, c)
		}
	}
	if c, ok := files[ManifestName]; ok {
		add(ManifestName, c)
	}
	tw.Close()
	return buf.Bytes()
}

// withExtra inserts an entry the manifest does not list before it.
func withExtra(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == ManifestName {
			tw.WriteHeader(&tar.Header{Name: "extra", Size: 1, Mode: 0o600, Typeflag: tar.TypeReg})
			tw.Write([]byte("x"))
		}
		tw.WriteHeader(h)
		io.Copy(tw, tr)
	}
	tw.Close()
	return buf.Bytes()
}

func TestWriterRefusesReservedNames(t *testing.T) {
	w, err := NewWriter(io.Discard, created)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", HeaderName, ManifestName} {
		if err := w.Add(name, 0, strings.NewReader("")); err == nil {
			t.Errorf("Add(%q) accepted", name)
		}
	}
	if err := w.Add("short", 10, strings.NewReader("abc")); err == nil || !strings.Contains(err.Error(), "ended after 3 of 10") {
		t.Errorf("short source: %v", err)
	}
}

// TestForward copies an archive into another through Forward, adds an
// entry of the second writer's own, and reads the result back whole; a
// source cut short fails the copy, which then has no manifest.
func TestForward(t *testing.T) {
	src := sample(t)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, created)
	if err != nil {
		t.Fatal(err)
	}
	_, m, err := Read(bytes.NewReader(src), w.Forward())
	if err != nil {
		t.Fatal(err)
	}
	own := []byte("SELECT 0\n")
	if err := w.Add("resources/r1", int64(len(own)), bytes.NewReader(own)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(m.Databases); err != nil {
		t.Fatal(err)
	}
	dir := NewDir(t.TempDir())
	_, got, err := Read(bytes.NewReader(buf.Bytes()), dir)
	if err != nil {
		t.Fatalf("the copy: %v", err)
	}
	if len(got.Entries) != len(m.Entries)+1 || len(got.Databases) != 1 {
		t.Fatalf("the copy's manifest: %+v", got)
	}
	for _, e := range m.Entries {
		if c, ok := got.Entry(e.Name); !ok || c != e {
			t.Errorf("entry %s: copied as %+v, was %+v", e.Name, c, e)
		}
	}
	p, _ := dir.Path("resources/r1")
	if data, err := os.ReadFile(p); err != nil || string(data) != string(own) {
		t.Errorf("own entry: %q, %v", data, err)
	}

	// The source cut inside its dump.
	var cut bytes.Buffer
	w, err = NewWriter(&cut, created)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Read(bytes.NewReader(src[:len(src)/2]), w.Forward()); err == nil {
		t.Fatal("a source cut in half was copied")
	}
	if _, _, err := Read(bytes.NewReader(cut.Bytes()), Discard); !errors.Is(err, ErrIncomplete) && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("the copy of a cut source: %v, want it refused", err)
	}
}
