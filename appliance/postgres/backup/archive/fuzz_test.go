package archive

import (
	"bytes"
	"io"
	"testing"
)

// sizes is a Sink that counts the bytes of each entry.
type sizes map[string]*int64

func (s sizes) Create(name string, _ int64) (io.WriteCloser, error) {
	n := new(int64)
	s[name] = n
	return counter{n}, nil
}

type counter struct{ n *int64 }

func (c counter) Write(p []byte) (int, error) { *c.n += int64(len(p)); return len(p), nil }
func (c counter) Close() error                { return nil }

// FuzzRead: an archive from anywhere (a restore's upload) never panics the
// reader, and one it accepts is whole: every manifest entry arrived with
// its size, and a database names an entry of the manifest.
func FuzzRead(f *testing.F) {
	good := sample(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:512])
	f.Add([]byte("not a backup"))
	f.Add([]byte{0x1f, 0x8b, 0x08, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		sink := sizes{}
		_, m, err := Read(bytes.NewReader(data), sink)
		if err != nil {
			return
		}
		for _, e := range m.Entries {
			var got int64
			if n, ok := sink[e.Name]; ok {
				got = *n
			}
			if got != e.Size {
				t.Fatalf("accepted archive: entry %s of %d bytes, the manifest says %d", e.Name, got, e.Size)
			}
		}
		for _, d := range m.Databases {
			if _, ok := m.Entry(d.Entry); !ok {
				t.Fatalf("accepted archive: database %s names no entry (%s)", d.Name, d.Entry)
			}
		}
	})
}
