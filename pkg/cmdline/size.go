package cmdline

import (
	"fmt"
	"strconv"
	"strings"
)

// sizeUnits are the suffixes a size may carry, largest first.
var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// ParseSize reads a size: bytes ("1048576"), or a whole number with KiB,
// MiB, GiB or TiB ("512MiB", "5GiB").
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	num, shift := s, uint(0)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = strings.TrimSpace(n), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want bytes, or a whole number with KiB, MiB, GiB or TiB (512MiB)", s)
	}
	if n > (1<<63-1)>>shift {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n << shift, nil
}

// FormatSize writes a size in the largest unit that divides it: 536870912
// → "512MiB".
func FormatSize(n int64) string {
	for _, u := range sizeUnits[:len(sizeUnits)-1] {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// SizeValue is a size as a flag value (urfave's cli.Generic).
type SizeValue int64

// Set parses s.
func (v *SizeValue) Set(s string) error {
	n, err := ParseSize(s)
	if err != nil {
		return err
	}
	*v = SizeValue(n)
	return nil
}

// String formats the size.
func (v *SizeValue) String() string {
	if v == nil {
		return ""
	}
	return FormatSize(int64(*v))
}

// RoundSize writes a size for people to read, not to parse back: three
// significant digits in the largest unit it reaches (1536 → "1.50KiB",
// 47395635 → "45.2MiB", 512 → "512B").
func RoundSize(n uint64) string {
	for _, u := range sizeUnits[:len(sizeUnits)-1] {
		if n >= 1<<u.shift {
			v := float64(n) / float64(uint64(1)<<u.shift)
			switch {
			case v < 10:
				return strconv.FormatFloat(v, 'f', 2, 64) + u.suffix
			case v < 100:
				return strconv.FormatFloat(v, 'f', 1, 64) + u.suffix
			}
			return strconv.FormatFloat(v, 'f', 0, 64) + u.suffix
		}
	}
	return strconv.FormatUint(n, 10) + "B"
}
