package halfclose_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/halfclose"
)

// serve accepts one connection, writes out without reading what the
// client sent, ends the connection with end and reports when done.
func serve(t *testing.T, ln net.Listener, out []byte, end func(net.Conn)) <-chan struct{} {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := conn.Write(out); err != nil {
			t.Error(err)
		}
		end(conn)
	}()
	return done
}

// TestFinishKeepsUnreadOutput: a server that leaves the client's bytes
// unread delivers all of its output when it ends with Finish and reads
// on, and the client's EOF comes after the last byte.
func TestFinishKeepsUnreadOutput(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out := bytes.Repeat([]byte("flynn"), 1<<20)
	done := serve(t, ln, out, func(conn net.Conn) {
		defer conn.Close()
		halfclose.Finish(conn, halfclose.Linger)
		_, _ = io.Copy(io.Discard, conn) // the client's unread bytes, then its hang-up
	})
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// Bytes the server never reads before it finishes: with a plain
	// Close they turn its FIN into a reset.
	if _, err := conn.Write(bytes.Repeat([]byte("stdin"), 1000)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read after %d of %d bytes: %v", len(got), len(out), err)
	}
	if !bytes.Equal(got, out) {
		t.Fatalf("read %d bytes, want %d", len(got), len(out))
	}
	conn.Close()
	<-done
}

// TestFinishGivesUpAfterLinger: a client that never hangs up holds the
// server's reader only until linger passes.
func TestFinishGivesUpAfterLinger(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	readErr := make(chan error, 1)
	done := serve(t, ln, []byte("bye"), func(conn net.Conn) {
		defer conn.Close()
		halfclose.Finish(conn, 50*time.Millisecond)
		_, err := io.Copy(io.Discard, conn)
		readErr <- err
	})
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	<-done
	if err := <-readErr; err == nil {
		t.Fatal("the server's read ended without an error; want its deadline")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("the server's read ended with %v; want a timeout", err)
	}
}
