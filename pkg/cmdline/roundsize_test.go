package cmdline

import "testing"

func TestRoundSize(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0B"},
		{512, "512B"},
		{1023, "1023B"},
		{1024, "1.00KiB"},
		{1536, "1.50KiB"},
		{47395635, "45.2MiB"},
		{256 << 20, "256MiB"},
		{1<<30 - 1, "1024MiB"},
		{3 << 40, "3.00TiB"},
		{5000 << 40, "5000TiB"},
	}
	for _, tt := range tests {
		if got := RoundSize(tt.n); got != tt.want {
			t.Errorf("RoundSize(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
