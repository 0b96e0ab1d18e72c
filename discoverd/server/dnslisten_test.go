package server

import (
	"net"
	"testing"
)

// TestListenDNSPassesOverATakenTCPPort: with port 0, a port whose TCP side
// another process holds is passed over.
func TestListenDNSPassesOverATakenTCPPort(t *testing.T) {
	// Hold TCP on ports until one is found whose UDP side is free: the
	// first try of listenDNS may then land on a held one or not; holding
	// many makes the clash likely, and listenDNS must succeed either way.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for i := 0; i < 200; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
	}
	for i := 0; i < 20; i++ {
		udp, tcp, err := listenDNS("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if udp.LocalAddr().String() != tcp.Addr().String() {
			t.Errorf("udp on %s, tcp on %s", udp.LocalAddr(), tcp.Addr())
		}
		udp.Close()
		tcp.Close()
	}
	if _, _, err := listenDNS(held[0].Addr().String()); err == nil {
		t.Error("a fixed port whose TCP side is held was taken")
	}
}
