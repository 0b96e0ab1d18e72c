package blobstoretest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"io"
	"math/rand/v2"
)

// Generated is a deterministic pseudo-random stream of a given size (ChaCha8,
// fast and incompressible) that hashes itself as it is read, so
// tests move any amount of data without holding it in memory.
type Generated struct {
	rng  *rand.ChaCha8
	left int64
	hash hash.Hash
}

// NewGenerated returns size bytes derived from seed; equal seeds give equal
// streams.
func NewGenerated(seed uint64, size int64) *Generated {
	var key [32]byte
	binary.BigEndian.PutUint64(key[:], seed)
	return &Generated{rng: rand.NewChaCha8(key), left: size, hash: sha256.New()}
}

// Read implements io.Reader.
func (g *Generated) Read(b []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > g.left {
		b = b[:g.left]
	}
	g.rng.Read(b)
	g.hash.Write(b)
	g.left -= int64(len(b))
	return len(b), nil
}

// SHA256 returns the hex hash of the bytes read so far (of the whole
// stream once it is drained).
func (g *Generated) SHA256() string { return hex.EncodeToString(g.hash.Sum(nil)) }

// Bytes returns the whole stream for seed and size, for small blobs.
func Bytes(seed uint64, size int) []byte {
	b, _ := io.ReadAll(NewGenerated(seed, int64(size)))
	return b
}

// hashOf returns the hex SHA-256 of b, the ETag a backend must report.
func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
