package gitreceive

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/openflynn/flynn/pkg/httpjson"
)

// lineWriter passes output on a whole line at a time, as soon as the line
// is complete, so that the client sees the build live and lines of stdout
// and stderr never interleave mid-line. hide, when set, can keep a line
// back (the machine-readable process types line).
type lineWriter struct {
	out  io.Writer
	hide func(line string) bool
	buf  []byte
}

func (l *lineWriter) write(p []byte) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return
		}
		l.emit(l.buf[:i+1])
		l.buf = l.buf[i+1:]
	}
}

// flush passes on an unterminated last line.
func (l *lineWriter) flush() {
	if len(l.buf) > 0 {
		l.emit(append(l.buf, '\n'))
		l.buf = nil
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
