package blobstore

import (
	"fmt"
	"strings"
)

// MaxPathLen bounds the length of a blob path in bytes.
const MaxPathLen = 1024

// maxSegmentLen bounds one path segment, as most filesystems do.
const maxSegmentLen = 255

// PathError says why a path was refused.
type PathError struct {
	Path   string
	Reason string
}

func (e *PathError) Error() string { return fmt.Sprintf("invalid blob path %q: %s", e.Path, e.Reason) }

// CleanPath validates a request path such as "/apps/123/slug.tgz" (the
// decoded URL path) and returns the blob path without its leading slash.
func CleanPath(urlPath string) (string, error) {
	if !strings.HasPrefix(urlPath, "/") {
		return "", &PathError{Path: urlPath, Reason: "must start with /"}
	}
	p := urlPath[1:]
	if err := ValidatePath(p); err != nil {
		return "", err
	}
	return p, nil
}

// ValidatePath checks a blob path (no leading slash). Paths are
// slash-separated segments of printable ASCII. The rules are strict on
// purpose: a path is refused rather than normalised, so "a/../b", "/a",
// "a//b" and "a/./b" never alias another blob nor escape the store, and
// since '%' and '\' are refused too, neither do their percent-encoded or
// Windows forms after a proxy decodes them once more.
func ValidatePath(p string) error {
	switch {
	case p == "":
		return &PathError{Path: p, Reason: "empty"}
	case len(p) > MaxPathLen:
		return &PathError{Path: p, Reason: fmt.Sprintf("longer than %d bytes", MaxPathLen)}
	}
	for i := 0; i < len(p); i++ {
		if !allowedByte(p[i]) {
			return &PathError{Path: p, Reason: fmt.Sprintf("character %q is not allowed", p[i])}
		}
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch {
		case seg == "":
			return &PathError{Path: p, Reason: "empty segment (leading, trailing or double slash)"}
		case seg == "." || seg == "..":
			return &PathError{Path: p, Reason: "dot segment"}
		case len(seg) > maxSegmentLen:
			return &PathError{Path: p, Reason: fmt.Sprintf("segment longer than %d bytes", maxSegmentLen)}
		}
	}
	return nil
}

// ValidatePrefix checks a prefix that paths are listed by (or a path to
// list after): at most MaxPathLen bytes of the characters a path may hold,
// empty included. Unlike a path it may end with a slash or stop inside a
// segment ("apps/12" matches "apps/123/slug.tgz").
func ValidatePrefix(p string) error {
	if len(p) > MaxPathLen {
		return &PathError{Path: p, Reason: fmt.Sprintf("longer than %d bytes", MaxPathLen)}
	}
	for i := 0; i < len(p); i++ {
		if !allowedByte(p[i]) {
			return &PathError{Path: p, Reason: fmt.Sprintf("character %q is not allowed", p[i])}
		}
	}
	return nil
}

// allowedByte admits letters, digits, '/' and the punctuation that is safe
// unescaped in a URL path and a file name.
func allowedByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("/-._~+=,@:", c) >= 0
}
