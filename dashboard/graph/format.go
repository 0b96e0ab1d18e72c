package graph

import (
	"math"
	"strconv"
	"strings"
)

// The units Chart.Unit formats specially. Any other unit is written after
// the number, which is shortened with k, M, G and T ("1.2k req/s"); a unit
// that starts with "%" is written against it ("45% CPU").
const (
	// UnitSeconds is a duration in seconds, shown in µs, ms or s.
	UnitSeconds = "s"
	// UnitBytes is a size in bytes, shown in B, KiB, MiB, GiB or TiB.
	UnitBytes = "bytes"
	// UnitPercent is a percentage: 12.5 is shown as 12.5%.
	UnitPercent = "%"
)

// FormatValue formats v in unit (see UnitSeconds) to three significant
// digits at most, as the charts label their axes and describe their latest
// values: "12.3 req/s", "250 ms", "1.5 GiB", "0.4%". NaN and infinities,
// which the charts draw as gaps, are "-".
func FormatValue(v float64, unit string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	if v < 0 {
		return "-" + FormatValue(-v, unit)
	}
	switch {
	case unit == UnitSeconds:
		v = roundSig(v)
		switch {
		case v == 0:
			return "0 s"
		case v < 1e-3:
			return number(v*1e6, false) + " µs"
		case v < 1:
			return number(v*1e3, false) + " ms"
		}
		return number(v, false) + " s"
	case unit == UnitBytes:
		return bytes(v)
	case strings.HasPrefix(unit, "%"):
		return number(v, false) + unit
	case unit == "":
		return number(v, true)
	}
	return number(v, true) + " " + unit
}

// binaryUnits are the units of UnitBytes, each 1024 times the one before.
var binaryUnits = [...]string{"B", "KiB", "MiB", "GiB", "TiB"}

// bytes formats a size in the largest binary unit it is at least one of.
func bytes(v float64) string {
	i := 0
	for ; i < len(binaryUnits)-1 && v >= 1024; i++ {
		v /= 1024
	}
	return number(v, false) + " " + binaryUnits[i]
}

// siPrefixes shorten large numbers of other units, largest first.
var siPrefixes = [...]struct {
	factor float64
	prefix string
}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}}

// number formats a non-negative v to three significant digits, with an SI
// prefix when si is set and v is 1000 or more.
func number(v float64, si bool) string {
	v = roundSig(v)
	prefix := ""
	if si {
		for _, p := range siPrefixes {
			if v >= p.factor {
				v, prefix = roundSig(v/p.factor), p.prefix
				break
			}
		}
	}
	// Shortest form: 12.3, not 12.300000000000001 nor 12.30.
	return strconv.FormatFloat(v, 'f', -1, 64) + prefix
}

// roundSig rounds v to three significant digits. Values too small for
// any chart to tell from zero (and for the powers of ten to represent)
// round to zero.
func roundSig(v float64) float64 {
	a := math.Abs(v)
	if a < 1e-9 {
		return 0
	}
	digits := 2 - int(math.Floor(math.Log10(a))) // decimals that keep three digits
	if digits >= 0 {
		// Dividing by the exact power gives the float nearest the
		// decimal, which prints short.
		p := math.Pow10(digits)
		return math.Round(v*p) / p
	}
	p := math.Pow10(-digits)
	return math.Round(v/p) * p
}
