package resp

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestReadReply(t *testing.T) {
	tests := []struct {
		name, in string
		want     any
		wantErr  error
	}{
		{"simple string", "+OK\r\n", "OK", nil},
		{"empty simple string", "+\r\n", "", nil},
		{"error", "-BUSYKEY Target key name already exists.\r\n", nil, Error("BUSYKEY Target key name already exists.")},
		{"integer", ":42\r\n", int64(42), nil},
		{"negative integer", ":-2\r\n", int64(-2), nil},
		{"bulk", "$5\r\nhe\r\no\r\n", []byte("he\r\no"), nil},
		{"empty bulk", "$0\r\n\r\n", []byte{}, nil},
		{"nil bulk", "$-1\r\n", nil, nil},
		{"array", "*3\r\n$1\r\na\r\n:1\r\n*0\r\n", []any{[]byte("a"), int64(1), []any{}}, nil},
		{"nil array", "*-1\r\n", nil, nil},
		{"an error in an array", "*1\r\n-ERR x\r\n", []any{Error("ERR x")}, nil},
		{"nothing", "", nil, io.EOF},
		{"a cut line", "+OK", nil, io.ErrUnexpectedEOF},
		{"a cut bulk", "$5\r\nab", nil, io.ErrUnexpectedEOF},
		{"a cut array", "*2\r\n:1\r\n", nil, io.ErrUnexpectedEOF},
		{"no CR", "+OK\n", nil, ErrProtocol},
		{"unknown type", "%1\r\n", nil, ErrProtocol},
		{"empty line", "\r\n", nil, ErrProtocol},
		{"not an integer", ":4x\r\n", nil, ErrProtocol},
		{"a plus sign", ":+4\r\n", nil, ErrProtocol},
		{"integer overflow", ":99999999999999999999\r\n", nil, ErrProtocol},
		{"negative length", "$-2\r\n", nil, ErrProtocol},
		{"bulk over the limit", "$536870913\r\n", nil, ErrProtocol},
		{"array over the limit", "*1048577\r\n", nil, ErrProtocol},
		{"too deep", strings.Repeat("*1\r\n", 9) + ":1\r\n", nil, ErrProtocol},
		{"bulk without CRLF", "$1\r\nab\r\n", nil, ErrProtocol},
		{"a line too long", "+" + strings.Repeat("a", maxLine) + "\r\n", nil, ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewReader(strings.NewReader(tt.in)).ReadReply()
			if !errors.Is(err, tt.wantErr) || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ReadReply(%q) = %#v, %v; want %#v, %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestNestingLimit(t *testing.T) {
	in := strings.Repeat("*1\r\n", 8) + ":1\r\n"
	if _, err := NewReader(strings.NewReader(in)).ReadReply(); err != nil {
		t.Errorf("8 nested arrays: %v, want them read", err)
	}
	r := NewReader(strings.NewReader(in))
	r.MaxDepth = 2
	if _, err := r.ReadReply(); !errors.Is(err, ErrProtocol) {
		t.Errorf("8 nested arrays with MaxDepth 2: %v, want a protocol error", err)
	}
}

// TestLargeHeaderSmallMemory checks that a header announcing a large bulk
// string costs memory only as its bytes arrive.
func TestLargeHeaderSmallMemory(t *testing.T) {
	in := "$536870912\r\n" + strings.Repeat("x", 10)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := NewReader(strings.NewReader(in)).ReadReply(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err %v, want unexpected EOF", err)
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
		t.Errorf("a 512 MiB header with 10 bytes after it took %d bytes, want at most 4 MiB", got)
	}
}

func TestErrorCode(t *testing.T) {
	for in, want := range map[Error]string{"BUSYKEY Target key": "BUSYKEY", "ERR": "ERR", "": ""} {
		if got := in.Code(); got != want {
			t.Errorf("Error(%q).Code() = %q, want %q", in, got, want)
		}
	}
}

func TestWriteCommand(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	if err := w.WriteCommand([]byte("RESTORE"), []byte("k\r\n"), []byte("0"), []byte{0, 0xff}, []byte{}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteCommandString("SELECT", "15"); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 0 {
		t.Errorf("%d bytes written before Flush", b.Len())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "*5\r\n$7\r\nRESTORE\r\n$3\r\nk\r\n\r\n$1\r\n0\r\n$2\r\n\x00\xff\r\n$0\r\n\r\n*2\r\n$6\r\nSELECT\r\n$2\r\n15\r\n"
	if b.String() != want {
		t.Errorf("wrote %q, want %q", b.String(), want)
	}
	// What is written reads back as the same arguments.
	r := NewReader(&b)
	for _, want := range []any{
		[]any{[]byte("RESTORE"), []byte("k\r\n"), []byte("0"), []byte{0, 0xff}, []byte{}},
		[]any{[]byte("SELECT"), []byte("15")},
	} {
		if got, err := r.ReadReply(); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("read back %#v, %v; want %#v", got, err, want)
		}
	}
}

// FuzzReadReply checks that the reader never panics, returns a value of
// the documented types or an error of the documented kinds, and keeps to
// its limits.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"+OK\r\n", "-ERR x\r\n", ":1\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*-1\r\n",
		"*2\r\n$1\r\na\r\n*1\r\n:2\r\n", "*1\r\n-ERR\r\n", "$99999999999\r\n", "*3\r\n",
		"*1\r\n*1\r\n*1\r\n*1\r\n:0\r\n", ":-\r\n", "$1\r\na\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		r.MaxBulk, r.MaxArray, r.MaxDepth = 64, 16, 3
		for range 8 {
			v, err := r.ReadReply()
			if err != nil {
				var reply Error
				if !errors.As(err, &reply) && !errors.Is(err, ErrProtocol) && err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("error %v of no documented kind", err)
				}
				if errors.As(err, &reply) {
					continue
				}
				return
			}
			check(t, v, r, 0)
		}
	})
}

// check fails the test if v is not a value ReadReply documents, within
// r's limits.
func check(t *testing.T, v any, r *Reader, depth int) {
	t.Helper()
	switch v := v.(type) {
	case nil, string, int64:
	case Error:
		if depth == 0 {
			t.Fatalf("an Error value at the top level")
		}
	case []byte:
		if len(v) > r.MaxBulk {
			t.Fatalf("bulk of %d bytes over the limit %d", len(v), r.MaxBulk)
		}
	case []any:
		if len(v) > r.MaxArray || depth >= r.MaxDepth {
			t.Fatalf("array of %d at depth %d beyond the limits", len(v), depth)
		}
		for _, e := range v {
			check(t, e, r, depth+1)
		}
	default:
		t.Fatalf("value of type %T", v)
	}
}
