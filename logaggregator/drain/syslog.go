package drain

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/openflynn/flynn/logaggregator"
)

// A line as a syslog message (RFC 5424), the same for syslog and HTTPS
// drains:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG
//	<14>1 2025-06-01T12:00:00.123456Z example web host1-0f3c… - - GET / 200
//
//   - PRI is the user facility (1) with severity info (6) for stdout and
//     error (3) for stderr: 14 and 11. Logplex marks every line local7.info
//     (190) whatever its stream, which throws away what stderr says.
//   - TIMESTAMP is when the job wrote the line, in UTC, to the
//     microsecond (RFC 5424's finest); "-" when unknown.
//   - HOSTNAME is the app's name ("flynn" when the line has none): which
//     node wrote a line matters less to a receiver than whose it is.
//   - APP-NAME is the process type ("router" for the router's request
//     lines), or "app" for a one-off job's.
//   - PROCID is the job's id, or "-".
//   - MSGID and STRUCTURED-DATA are "-".
//   - MSG is the line without its trailing newline.
//
// HOSTNAME, APP-NAME and PROCID hold printable US-ASCII only (RFC 5424's
// PRINTUSASCII, 33–126): every other byte becomes '_', and they are cut to
// RFC 5424's lengths. On the wire each message is framed by octet counting
// (RFC 6587, 3.4.1): "MSG-LEN SP SYSLOG-MSG", as logplex frames its HTTPS
// batches too.

// The values and bounds of a message's header.
const (
	priStdout = 14 // user.info
	priStderr = 11 // user.err

	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128

	// timestampLayout is RFC 5424's TIMESTAMP (RFC 3339, at most six
	// fractional digits) in UTC.
	timestampLayout = "2006-01-02T15:04:05.000000Z"
)

// appendFrame appends l as one octet-counted syslog frame.
func appendFrame(b []byte, l *logaggregator.Line) []byte {
	start := len(b)
	b = appendMessage(b, l)
	// The length goes before the message: write it after, then rotate.
	var num [24]byte
	prefix := append(strconv.AppendInt(num[:0], int64(len(b)-start), 10), ' ')
	b = append(b, prefix...)
	copy(b[start+len(prefix):], b[start:len(b)-len(prefix)])
	copy(b[start:], prefix)
	return b
}

// appendMessage appends l as an RFC 5424 message.
func appendMessage(b []byte, l *logaggregator.Line) []byte {
	pri := priStdout
	if l.Stream == logaggregator.StreamStderr {
		pri = priStderr
	}
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(pri), 10)
	b = append(b, ">1 "...)
	b = appendTimestamp(b, l.Time)
	b = append(b, ' ')
	b = appendField(b, l.AppName, maxHostname, "flynn")
	b = append(b, ' ')
	b = appendField(b, l.ProcessType, maxAppName, "app")
	b = append(b, ' ')
	b = appendField(b, l.JobID, maxProcID, "-")
	b = append(b, " - - "...)
	return append(b, strings.TrimSuffix(l.Data, "\n")...)
}

// appendTimestamp appends t as RFC 5424's TIMESTAMP, or its NILVALUE for
// a zero time or one RFC 3339 cannot write (a year past 9999).
func appendTimestamp(b []byte, t time.Time) []byte {
	t = t.UTC()
	if t.IsZero() || t.Year() < 0 || t.Year() > 9999 {
		return append(b, '-')
	}
	return t.AppendFormat(b, timestampLayout)
}

// appendField appends s as a header field of at most maxLen printable
// US-ASCII bytes, or nilValue when s is empty.
func appendField(b []byte, s string, maxLen int, nilValue string) []byte {
	if s == "" {
		return append(b, nilValue...)
	}
	for i := 0; i < len(s) && i < maxLen; i++ {
		c := s[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		b = append(b, c)
	}
	return b
}

// syslogTransport sends lines to a syslog receiver over one TCP (or TLS)
// connection, made again after a failure. RFC 6587 has no
// acknowledgements: a write the kernel took may still be lost if the
// receiver goes away at that moment. So before each write the connection
// is checked for a close the receiver announced, which is how a receiver
// that stops cleanly loses nothing.
type syslogTransport struct {
	addr    string
	tls     *tls.Config // nil: plain TCP
	timeout time.Duration

	conn      net.Conn
	stopClose func() bool
	frames    []byte
}

var _ transport = (*syslogTransport)(nil)

func (t *syslogTransport) send(ctx context.Context, batch []logaggregator.Line) error {
	if t.conn != nil && !open(t.conn) {
		t.close()
	}
	if t.conn == nil {
		if err := t.dial(ctx); err != nil {
			return err
		}
	}
	t.frames = t.frames[:0]
	for i := range batch {
		t.frames = appendFrame(t.frames, &batch[i])
	}
	if err := t.conn.SetWriteDeadline(time.Now().Add(t.timeout)); err != nil {
		t.close()
		return fmt.Errorf("write to %s: %w", t.addr, err)
	}
	if _, err := t.conn.Write(t.frames); err != nil {
		t.close()
		return fmt.Errorf("write to %s: %w", t.addr, err)
	}
	return nil
}

func (t *syslogTransport) dial(ctx context.Context) error {
	dialCtx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	d := &net.Dialer{}
	var conn net.Conn
	var err error
	if t.tls != nil {
		conn, err = (&tls.Dialer{NetDialer: d, Config: t.tls}).DialContext(dialCtx, "tcp", t.addr)
	} else {
		conn, err = d.DialContext(dialCtx, "tcp", t.addr)
	}
	if err != nil {
		return fmt.Errorf("connect to %s: %w", t.addr, err)
	}
	t.conn = conn
	// A write blocked on a receiver that reads nothing ends when the
	// drain stops, not only at its deadline.
	t.stopClose = context.AfterFunc(ctx, func() { conn.Close() })
	return nil
}

// probeWait is how long open waits for a read. A deadline already past
// would fail the read before it looks at the socket; the wait is paid
// once per batch, and only by a connection that is still open.
const probeWait = time.Millisecond

// open reports whether conn is still open for all its peer has said: a
// syslog receiver sends nothing, so a read that does not time out at once
// finds the connection closed (or a receiver that talks, which is let be).
func open(conn net.Conn) bool {
	if err := conn.SetReadDeadline(time.Now().Add(probeWait)); err != nil {
		return false
	}
	var b [1]byte
	_, err := conn.Read(b[:])
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return false
	}
	var netErr net.Error
	return err == nil || errors.As(err, &netErr) && netErr.Timeout()
}

func (t *syslogTransport) close() {
	if t.conn == nil {
		return
	}
	t.stopClose()
	t.conn.Close()
	t.conn = nil
}
