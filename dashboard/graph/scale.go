package graph

import "math"

// niceSteps are the leading digits of a round axis maximum. Finer than the
// usual 1-2-5, so that the line fills most of the chart's height: the top
// of the axis is at most a third above the largest value.
var niceSteps = [...]float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10}

// niceCeil returns the smallest round number (a nice step times a power of
// ten) that is at least v, for v > 0.
func niceCeil(v float64) float64 {
	exp := math.Floor(math.Log10(v))
	pow := math.Pow(10, exp)
	lead := v / pow
	for _, s := range niceSteps {
		// The tolerance keeps 0.3 (2.9999… × 0.1 in floating point) at
		// 0.3 rather than 0.4.
		if s >= lead*(1-1e-9) {
			return s * pow
		}
	}
	return 10 * pow // not reached: lead < 10
}

// axisMax returns the top of the y axis for values up to v in unit: a
// round number at least v, round in the unit's own steps (512 MiB, not
// 537 million bytes). With nothing above zero it is 1, so that a flat
// line of zeros lies on the bottom of the chart.
func axisMax(v float64, unit string) float64 {
	if !(v > 0) || math.IsInf(v, 0) {
		return 1
	}
	if unit == UnitBytes {
		// Round in the largest binary unit below 1000 of it, so that
		// the top is 1 GiB rather than 1000 MiB.
		scale := 1.0
		for i := 1; i < len(binaryUnits) && v/scale >= 1000; i++ {
			scale *= 1024
		}
		return niceCeil(v/scale) * scale
	}
	return niceCeil(v)
}

// yRange returns the y axis's bounds for values from lo to hi: from zero,
// or below it for negative values, to a round maximum.
func yRange(lo, hi float64, unit string) (bottom, top float64) {
	top = axisMax(hi, unit)
	if lo < 0 {
		bottom = -axisMax(-lo, unit)
	}
	return bottom, top
}
