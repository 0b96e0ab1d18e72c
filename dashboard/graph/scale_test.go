package graph

import "testing"

func TestNiceCeil(t *testing.T) {
	cases := []struct {
		v, want float64
	}{
		{0.3, 0.3}, // not 0.4 for 0.30000000000000004
		{0.37, 0.4},
		{0.0042, 0.005},
		{1, 1},
		{1.01, 1.2},
		{7, 8},
		{11, 12},
		{13, 15},
		{95, 100},
		{101, 120},
		{2600, 3000},
	}
	for _, tc := range cases {
		if got := niceCeil(tc.v); !near(got, tc.want) {
			t.Errorf("niceCeil(%v) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestAxisMax(t *testing.T) {
	const mib = 1024.0 * 1024
	cases := []struct {
		name string
		v    float64
		unit string
		want float64
	}{
		{"all zero", 0, "req/s", 1},
		{"rate", 11, "req/s", 12},
		{"latency", 0.37, UnitSeconds, 0.4},
		{"percent", 95, UnitPercent, 100},
		{"MiB round in MiB", 700 * mib, UnitBytes, 800 * mib},
		{"near a GiB rounds in GiB", 1010 * mib, UnitBytes, 1024 * mib},
		{"bytes", 900, UnitBytes, 1000},
		{"1000 bytes is a KiB", 1000, UnitBytes, 1024},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := axisMax(tc.v, tc.unit); !near(got, tc.want) {
				t.Errorf("axisMax(%v, %q) = %v (%s), want %v (%s)", tc.v, tc.unit, got, FormatValue(got, tc.unit), tc.want, FormatValue(tc.want, tc.unit))
			}
		})
	}
}

func TestYRange(t *testing.T) {
	cases := []struct {
		name                string
		lo, hi              float64
		wantBottom, wantTop float64
	}{
		{"from zero", 3, 9, 0, 10},
		{"negative values", -3, 9, -3, 10},
		{"only negative values", -7, -1, -8, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bottom, top := yRange(tc.lo, tc.hi, "")
			if !near(bottom, tc.wantBottom) || !near(top, tc.wantTop) {
				t.Errorf("yRange(%v, %v) = %v, %v; want %v, %v", tc.lo, tc.hi, bottom, top, tc.wantBottom, tc.wantTop)
			}
		})
	}
}

// near reports whether a and b are equal but for floating-point error.
func near(a, b float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= 1e-9*max(1, b, -b)
}
