// Package iocount counts the bytes that pass through a writer, for the
// logs and messages that say how much a stream carried.
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
