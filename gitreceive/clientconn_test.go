package gitreceive

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"
)

// TestIdleConnSendsNothingMore: once a read ran into the idle bound, the
// connection is hung up on, so a write after it (the session's exit
// status, sent when the SSH server cancels the session on that read)
// fails rather than pushing the deadline ahead and going out.
func TestIdleConnSendsNothingMore(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	now := time.Now()
	c := &clientConn{
		Conn:        server,
		log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		idle:        50 * time.Millisecond,
		maxLife:     time.Minute,
		maxDeadline: now.Add(time.Minute),
		release:     func() {},
	}
	c.start()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read of a silent client: %v, want the deadline exceeded", err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := client.Read(make([]byte, 1))
		got <- err
	}()
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("a write after the idle bound went out")
	}
	select {
	case err := <-got:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("the client read %v, want the connection closed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client's side stayed open")
	}
}
