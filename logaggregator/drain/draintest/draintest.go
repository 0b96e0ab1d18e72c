// Package draintest is a log drain's far end for tests: a syslog receiver
// on 127.0.0.1 that reads octet-counted RFC 5424 frames (RFC 6587), as a
// drain of the scheme syslog+tcp sends them, and keeps each message's
// text.
package draintest

import (
	"bufio"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// maxFrame bounds a frame the receiver takes; a drain sends far less.
const maxFrame = 1 << 20

// Syslog is a syslog receiver running until its test ends.
type Syslog struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	msgs []string
}

// NewSyslog starts a receiver on a free port of 127.0.0.1. A frame that
// breaks the framing fails t.
func NewSyslog(t testing.TB) *Syslog {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Syslog{ln: ln}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer conn.Close()
				r.read(t, conn)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		r.wg.Wait()
	})
	return r
}

// read keeps the messages of one connection until it ends.
func (r *Syslog) read(t testing.TB, conn net.Conn) {
	br := bufio.NewReader(conn)
	for {
		n, err := br.ReadString(' ')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil || size <= 0 || size > maxFrame {
			t.Errorf("draintest: syslog frame length %q", n)
			return
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		// <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
		fields := strings.SplitN(string(msg), " ", 8)
		r.mu.Lock()
		r.msgs = append(r.msgs, fields[len(fields)-1])
		r.mu.Unlock()
	}
}

// Addr is the receiver's address, for a syslog+tcp:// drain URL.
func (r *Syslog) Addr() string { return r.ln.Addr().String() }

// Messages returns the messages received so far, in order.
func (r *Syslog) Messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// Matching returns the messages received so far that start with prefix.
func (r *Syslog) Matching(prefix string) []string {
	var out []string
	for _, m := range r.Messages() {
		if strings.HasPrefix(m, prefix) {
			out = append(out, m)
		}
	}
	return out
}
