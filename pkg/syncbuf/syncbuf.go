// Package syncbuf is a bytes.Buffer that one goroutine (a server's
// logger, a process's output) writes while another reads it, as tests
// that watch output do.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is safe to write and read at once. The zero value is empty and
// ready.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
