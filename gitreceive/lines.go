package gitreceive

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/openflynn/flynn/pkg/httpjson"
)

// maxLine is the longest line passed on whole. A longer one goes on in
// pieces of maxLine bytes, each ended with a newline, so that a build
// writing a gigabyte without a newline costs this process maxLine bytes
// and its client sees the output as it comes. It is flynn-host's bound
// (host/logbuf.MaxLine), which splits what a job writes as Docker does.
const maxLine = 16 << 10

// lineWriter passes output on a whole line at a time, as soon as the line
// is complete, so that the client sees the build live and lines of stdout
// and stderr never interleave mid-line. hide, when set, can keep a line
// back (the machine-readable process types line; one longer than maxLine
// reaches hide in pieces, and no such piece parses).
type lineWriter struct {
	out  io.Writer
	hide func(line string) bool
	buf  []byte // the start of an unfinished line: at most maxLine bytes
}

func (l *lineWriter) write(p []byte) {
	for len(p) > 0 {
		room := maxLine - len(l.buf)
		if i := bytes.IndexByte(p[:min(len(p), room+1)], '\n'); i >= 0 {
			line := p[:i+1]
			p = p[i+1:]
			if len(l.buf) == 0 {
				l.emit(line) // the common case: no copy
				continue
			}
			l.buf = append(l.buf, line...)
			l.emit(l.buf)
			l.buf = l.buf[:0]
			continue
		}
		if l.buf == nil {
			l.buf = make([]byte, 0, maxLine+1) // room for the piece's newline
		}
		n := min(len(p), room)
		l.buf = append(l.buf, p[:n]...)
		p = p[n:]
		if len(l.buf) == maxLine {
			l.emit(append(l.buf, '\n'))
			l.buf = l.buf[:0]
		}
	}
}

// flush passes on an unterminated last line.
func (l *lineWriter) flush() {
	if len(l.buf) > 0 {
		l.emit(append(l.buf, '\n'))
		l.buf = l.buf[:0]
	}
}

func (l *lineWriter) emit(line []byte) {
	if l.hide != nil && l.hide(string(line)) {
		return
	}
	_, _ = l.out.Write(line)
}

func asAPIError(err error, target **httpjson.Error) bool { return errors.As(err, target) }

func errorsIsDeadline(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.DeadlineExceeded)
}
