// Package halfclose ends a server's side of a finished stream connection
// (an attached job's) without throwing away what the peer has not read
// yet. Closing a TCP connection while bytes from the peer are still
// unread sends a reset instead of a FIN, and a reset makes the peer's
// kernel discard the data it had received but not yet handed to the
// reader: the tail of a job's output, a database dump cut short.
package halfclose

import (
	"net"
	"time"
)

// Linger is how long Finish lets the peer take to read the rest and
// hang up before reads on the connection fail.
const Linger = 30 * time.Second

// Finish half-closes conn, so the peer reads what was written and then
// EOF, and makes reads on conn fail after linger. The caller must keep
// reading conn (discarding what it does not need) until that read fails,
// the peer hanging up or linger passing, and only then close conn.
func Finish(conn net.Conn, linger time.Duration) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = conn.SetReadDeadline(time.Now().Add(linger))
}
