package graph

import (
	"math"
	"testing"
)

func TestFormatValue(t *testing.T) {
	const (
		kib = 1024.0
		mib = 1024 * kib
		gib = 1024 * mib
	)
	cases := []struct {
		name string
		v    float64
		unit string
		want string
	}{
		{"zero rate", 0, "req/s", "0 req/s"},
		{"three digits", 12.345, "req/s", "12.3 req/s"},
		{"whole", 12, "req/s", "12 req/s"},
		{"thousands", 1234, "req/s", "1.23k req/s"},
		{"rounds up into k", 999.6, "req/s", "1k req/s"},
		{"millions without unit", 2.5e6, "", "2.5M"},
		{"small", 0.0123, "req/s", "0.0123 req/s"},
		{"too small to tell from zero", 1e-12, "req/s", "0 req/s"},
		{"negative", -3, "req/s", "-3 req/s"},
		{"percent", 12.5, UnitPercent, "12.5%"},
		{"percent of CPU", 45, "% CPU", "45% CPU"},
		{"many CPUs: no k", 6400, "% CPU", "6400% CPU"},
		{"zero seconds", 0, UnitSeconds, "0 s"},
		{"microseconds", 0.00012, UnitSeconds, "120 µs"},
		{"milliseconds", 0.25, UnitSeconds, "250 ms"},
		{"rounds up into seconds", 0.9996, UnitSeconds, "1 s"},
		{"seconds", 1.5, UnitSeconds, "1.5 s"},
		{"many seconds", 75, UnitSeconds, "75 s"},
		{"bytes", 512, UnitBytes, "512 B"},
		{"KiB", 1.5 * kib, UnitBytes, "1.5 KiB"},
		{"MiB", 12.34 * mib, UnitBytes, "12.3 MiB"},
		{"GiB", 1.5 * gib, UnitBytes, "1.5 GiB"},
		{"exactly 1 GiB", gib, UnitBytes, "1 GiB"},
		{"TiB and beyond, to three digits", 2048 * 1024 * gib, UnitBytes, "2050 TiB"},
		{"NaN", math.NaN(), "req/s", "-"},
		{"infinity", math.Inf(1), UnitSeconds, "-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := FormatValue(tc.v, tc.unit); got != tc.want {
				t.Errorf("FormatValue(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
			}
		})
	}
}
