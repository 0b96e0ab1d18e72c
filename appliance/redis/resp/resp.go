// Package resp is a minimal client of RESP2, the protocol Redis speaks: a
// Writer that sends commands as arrays of bulk strings, a Reader that reads
// the five kinds of reply, and a Conn that pairs them over a connection.
// It is the little the Redis appliance's provider needs to dump and restore
// a server (see package provider), not a general Redis client: no RESP3,
// no inline commands, no connection pool.
//
// Replies are read into Go values:
//
//	+OK            simple string  string
//	-ERR …         error          Error (returned as the error at the top level)
//	:42            integer        int64
//	$3 abc         bulk string    []byte (a nil bulk, $-1, is nil)
//	*2 …           array          []any (a nil array, *-1, is nil)
//
// The Reader is bounded, because the provider reads what a server (or a
// dump sent to its API) says: a bulk string may be at most MaxBulk bytes
// (default 512 MiB, the largest argument Redis itself accepts, so nothing
// Redis can restore is refused), an array at most MaxArray elements
// (default 1<<20), arrays nest at most MaxDepth deep (default 8), and a
// line (a simple string, an error, an integer, a header) is at most 64 KiB.
// Memory is also taken as data arrives, not as a header announces it: a
// header that claims 512 MiB and is followed by nothing costs a few
// kilobytes.
package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Limits of a Reader whose fields are zero.
const (
	// DefaultMaxBulk is Redis's proto-max-bulk-len default.
	DefaultMaxBulk  = 512 << 20
	DefaultMaxArray = 1 << 20
	DefaultMaxDepth = 8
)

// maxLine bounds a line: the size of the Reader's buffer.
const maxLine = 64 << 10

// chunk is how much a bulk string's buffer grows by at most at a time, so
// that memory follows the bytes received rather than the length claimed.
const chunk = 1 << 20

// ErrProtocol is wrapped by every error of a stream that is not RESP2 or
// breaks a Reader's limits. The stream cannot be read further.
var ErrProtocol = errors.New("resp: protocol error")

// Error is an error reply, such as "WRONGPASS invalid username-password
// pair". The connection stays usable after one.
type Error string

func (e Error) Error() string { return string(e) }

// Code is the reply's first word ("ERR", "BUSYKEY", "NOAUTH"), which
// Redis uses as the kind of error.
func (e Error) Code() string {
	code, _, _ := strings.Cut(string(e), " ")
	return code
}

// Reader reads replies (or commands, which are arrays of bulk strings)
// from a stream.
type Reader struct {
	// MaxBulk is the longest bulk string accepted; default DefaultMaxBulk.
	MaxBulk int
	// MaxArray is the most elements an array may have; default
	// DefaultMaxArray.
	MaxArray int
	// MaxDepth is how deep arrays may nest; default DefaultMaxDepth.
	MaxDepth int

	br *bufio.Reader
}

// NewReader returns a Reader of r with the default limits.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, maxLine)}
}

func protocolError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

// ReadReply reads one reply. An error reply at the top level is returned
// as an Error error with a nil value, so that `if err != nil` catches it;
// within an array it is an Error element. Other errors are the stream's:
// io.EOF before a reply begins, io.ErrUnexpectedEOF within one, or one
// wrapping ErrProtocol.
func (r *Reader) ReadReply() (any, error) {
	v, err := r.read(0)
	if err != nil {
		return nil, err
	}
	if e, ok := v.(Error); ok {
		return nil, e
	}
	return v, nil
}

func (r *Reader) read(depth int) (any, error) {
	line, err := r.line(depth == 0)
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return nil, protocolError("empty line")
	}
	switch kind, rest := line[0], line[1:]; kind {
	case '+':
		return string(rest), nil
	case '-':
		return Error(rest), nil
	case ':':
		n, err := parseInt(rest)
		if err != nil {
			return nil, err
		}
		return n, nil
	case '$':
		n, err := r.length(rest, r.maxBulk(), "bulk string")
		if err != nil || n < 0 {
			return nil, err
		}
		return r.bulk(n)
	case '*':
		n, err := r.length(rest, r.maxArray(), "array")
		if err != nil || n < 0 {
			return nil, err
		}
		if depth+1 > r.maxDepth() {
			return nil, protocolError("arrays nested deeper than %d", r.maxDepth())
		}
		a := make([]any, 0, min(n, 1024))
		for range n {
			v, err := r.read(depth + 1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		return a, nil
	default:
		return nil, protocolError("unknown reply type %q", kind)
	}
}

// line reads a line without its CRLF. At the start of a reply (first), a
// clean end of the stream is io.EOF; anywhere else it is unexpected.
func (r *Reader) line(first bool) ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, protocolError("line longer than %d bytes", maxLine)
	case err == io.EOF && first && len(line) == 0:
		return nil, io.EOF
	case err == io.EOF:
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, protocolError("line not ended by CRLF")
	}
	return line[:len(line)-2], nil
}

// length parses the length of a bulk string or an array: -1 (nil) or
// 0..max.
func (r *Reader) length(b []byte, max int, what string) (int, error) {
	n, err := parseInt(b)
	switch {
	case err != nil:
		return 0, err
	case n == -1:
		return -1, nil
	case n < 0:
		return 0, protocolError("%s of length %d", what, n)
	case n > int64(max):
		return 0, protocolError("%s of %d, more than the limit of %d", what, n, max)
	}
	return int(n), nil
}

// bulk reads n bytes and the CRLF after them.
func (r *Reader) bulk(n int) ([]byte, error) {
	buf := make([]byte, 0, min(n, chunk))
	for len(buf) < n {
		m := min(n-len(buf), chunk)
		buf = slices.Grow(buf, m)
		if _, err := io.ReadFull(r.br, buf[len(buf):len(buf)+m]); err != nil {
			return nil, unexpected(err)
		}
		buf = buf[:len(buf)+m]
	}
	var crlf [2]byte
	if _, err := io.ReadFull(r.br, crlf[:]); err != nil {
		return nil, unexpected(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return nil, protocolError("bulk string not ended by CRLF")
	}
	return buf, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseInt parses a RESP integer: an optional minus and decimal digits.
// strconv alone would also take a plus sign, which Redis never sends.
func parseInt(b []byte) (int64, error) {
	digits := bytes.TrimPrefix(b, []byte("-"))
	if len(digits) == 0 || len(digits) > 19 {
		return 0, protocolError("integer %q", b)
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, protocolError("integer %q", b)
		}
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, protocolError("integer %q", b)
	}
	return n, nil
}

func (r *Reader) maxBulk() int  { return orDefault(r.MaxBulk, DefaultMaxBulk) }
func (r *Reader) maxArray() int { return orDefault(r.MaxArray, DefaultMaxArray) }
func (r *Reader) maxDepth() int { return orDefault(r.MaxDepth, DefaultMaxDepth) }

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Writer writes commands, buffered until Flush.
type Writer struct {
	bw  *bufio.Writer
	num []byte
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, 32<<10)}
}

// WriteCommand writes one command: an array of bulk strings.
func (w *Writer) WriteCommand(args ...[]byte) error {
	w.header('*', len(args))
	for _, a := range args {
		w.header('$', len(a))
		w.bw.Write(a)
		w.bw.WriteString("\r\n")
	}
	// bufio.Writer's errors stick: the last call reports the first.
	_, err := w.bw.WriteString("")
	return err
}

// WriteCommandString is WriteCommand of strings.
func (w *Writer) WriteCommandString(args ...string) error {
	w.header('*', len(args))
	for _, a := range args {
		w.header('$', len(a))
		w.bw.WriteString(a)
		w.bw.WriteString("\r\n")
	}
	_, err := w.bw.WriteString("")
	return err
}

func (w *Writer) header(kind byte, n int) {
	w.num = append(strconv.AppendInt(append(w.num[:0], kind), int64(n), 10), '\r', '\n')
	w.bw.Write(w.num)
}

// Flush sends what was written.
func (w *Writer) Flush() error { return w.bw.Flush() }
