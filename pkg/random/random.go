// Package random makes identifiers and secrets from crypto/rand.
package random

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// UUID returns a random (version 4) UUID in its canonical text form.
func UUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Hex returns n random bytes as 2n hex digits, for keys and passwords.
func Hex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
