// Package iocount counts the bytes that pass through a writer or a
// reader, for the logs and messages that say how much a stream carried.
package iocount

import "io"

// Writer writes to W and counts in N the bytes W took.
type Writer struct {
	W io.Writer
	N int64
}

// Write writes p to W.
func (c *Writer) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N += int64(n)
	return n, err
}

// Reader reads from R and counts in N the bytes it gave.
type Reader struct {
	R io.Reader
	N int64
}

// Read reads from R into p.
func (c *Reader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	return n, err
}
