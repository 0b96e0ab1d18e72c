package discoverdtest

import (
	"net"
	"sync/atomic"
	"testing"
)

// A port taken between its pick and etcd's bind makes Start pick others
// and start again, instead of failing the test that wanted a discoverd.
func TestStartPicksOtherPortsWhenOneIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var picks atomic.Int32
	s, err := Start(Options{DataDir: t.TempDir(), freeAddr: func(ip string) (string, error) {
		if picks.Add(1) == 1 {
			return taken.Addr().String(), nil // as if another process took it
		}
		return FreeAddrOn(ip)
	}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer s.Stop()
	if n := picks.Load(); n != 4 {
		t.Errorf("%d ports picked, want 4 (two, then two again)", n)
	}
	if _, err := s.Client().Services(t.Context()); err != nil {
		t.Errorf("the discoverd started on the second try does not answer: %v", err)
	}
}
