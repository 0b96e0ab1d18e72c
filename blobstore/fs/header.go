package fs

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/openflynn/flynn/blobstore"
)

// A blob file starts with a header that carries the blob's metadata, so
// that content and metadata are replaced by one rename:
//
//	magic    8 bytes  "FLYBLOB\x01" (the last byte is the format version)
//	size     8 bytes  content length, big endian
//	modtime  8 bytes  Unix nanoseconds, big endian
//	sha256  32 bytes  content hash (the ETag)
//	pathlen  2 bytes  big endian
//	path     pathlen bytes
//	content  size bytes, to the end of the file
const (
	magic          = "FLYBLOB\x01"
	fixedHeaderLen = len(magic) + 8 + 8 + 32 + 2
)

func headerLen(p string) int { return fixedHeaderLen + len(p) }

func encodeHeader(info blobstore.Info) []byte {
	b := make([]byte, 0, headerLen(info.Path))
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint64(b, uint64(info.Size))
	b = binary.BigEndian.AppendUint64(b, uint64(info.ModTime.UnixNano()))
	sum, _ := hex.DecodeString(info.ETag)
	b = append(b, sum...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(info.Path)))
	return append(b, info.Path...)
}

// readHeader reads and checks the header of blob file f, which should hold
// blob p, and returns the blob's info and the header length.
func readHeader(f *os.File, p string) (blobstore.Info, int64, error) {
	info, n, err := readAnyHeader(f)
	if err != nil {
		return blobstore.Info{}, 0, err
	}
	if info.Path != p {
		return blobstore.Info{}, 0, fmt.Errorf("blob file holds another path (%d bytes)", len(info.Path))
	}
	return info, n, nil
}

// readAnyHeader reads and checks the header of blob file f, whatever blob
// it holds, and returns the blob's info and the header length.
func readAnyHeader(f *os.File) (blobstore.Info, int64, error) {
	fixed := make([]byte, fixedHeaderLen)
	if _, err := io.ReadFull(f, fixed); err != nil {
		return blobstore.Info{}, 0, fmt.Errorf("read header: %w", err)
	}
	if string(fixed[:len(magic)]) != magic {
		return blobstore.Info{}, 0, errors.New("not a blob file (bad magic)")
	}
	rest := fixed[len(magic):]
	size := int64(binary.BigEndian.Uint64(rest[0:8]))
	mod := int64(binary.BigEndian.Uint64(rest[8:16]))
	sum := rest[16:48]
	path := make([]byte, binary.BigEndian.Uint16(rest[48:50]))
	if _, err := io.ReadFull(f, path); err != nil {
		return blobstore.Info{}, 0, fmt.Errorf("read header: %w", err)
	}
	hdrLen := int64(fixedHeaderLen + len(path))
	st, err := f.Stat()
	if err != nil {
		return blobstore.Info{}, 0, err
	}
	if st.Size() != hdrLen+size {
		return blobstore.Info{}, 0, fmt.Errorf("blob file is %d bytes, header says %d", st.Size(), hdrLen+size)
	}
	return blobstore.Info{
		Path:    string(path),
		Size:    size,
		ETag:    hex.EncodeToString(sum),
		ModTime: time.Unix(0, mod).UTC(),
	}, hdrLen, nil
}
