package server

import (
	"context"
	"fmt"
	"net"
	"syscall"
)

// listen opens a TCP listener on addr, with SO_REUSEPORT when reusePort is
// set (see Config.ReusePort).
func listen(addr string, reusePort bool) (net.Listener, error) {
	var lc net.ListenConfig
	if reusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) { serr = setReusePort(fd) }); err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("SO_REUSEPORT: %w", serr)
			}
			return nil
		}
	}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// listenAll opens a listener on each address; on failure it closes those
// it opened.
func listenAll(addrs []string, reusePort bool) ([]net.Listener, error) {
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := listen(a, reusePort)
		if err != nil {
			closeAll(lns)
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}
