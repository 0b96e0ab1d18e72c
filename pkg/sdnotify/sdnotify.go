// Package sdnotify tells systemd how a service of Type=notify is doing
// (sd_notify(3)): that it is ready, or stopping. It is the protocol, not a
// library binding: one datagram on the socket systemd names in
// NOTIFY_SOCKET, so a daemon needs neither cgo nor libsystemd.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// States a daemon reports (sd_notify(3)).
const (
	// Ready says start-up is finished: systemctl start returns, and units
	// ordered after this one start.
	Ready = "READY=1"
	// Stopping says the daemon has begun to shut down.
	Stopping = "STOPPING=1"
)

// Notify sends state to the socket named by the NOTIFY_SOCKET environment
// variable. Without one (not started by systemd, or not Type=notify) it
// does nothing and reports false.
func Notify(state string) (bool, error) {
	return NotifySocket(os.Getenv("NOTIFY_SOCKET"), state)
}

// NotifySocket sends state to the datagram socket at path; "" does nothing.
// A path starting with '@' names a socket in the abstract namespace.
func NotifySocket(path, state string) (bool, error) {
	if path == "" {
		return false, nil
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sd_notify %s: %w", state, err)
	}
	return true, nil
}
