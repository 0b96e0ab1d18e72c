package ports

import (
	"errors"
	"testing"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		in      string
		lo, hi  int
		wantErr bool
	}{
		{in: "55000-55999", lo: 55000, hi: 55999},
		{in: "10-10", lo: 10, hi: 10},
		{in: "10", wantErr: true},
		{in: "20-10", wantErr: true},
		{in: "0-10", wantErr: true},
		{in: "1-70000", wantErr: true},
		{in: "a-b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			lo, hi, err := ParseRange(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseRange(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && (lo != tt.lo || hi != tt.hi) {
				t.Errorf("ParseRange(%q) = %d-%d, want %d-%d", tt.in, lo, hi, tt.lo, tt.hi)
			}
		})
	}
}

func TestAllocateReleaseExhaust(t *testing.T) {
	a := New(100, 103)
	got, err := a.Allocate("a", 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{100, 101, 102}; !equal(got, want) {
		t.Fatalf("Allocate = %v, want %v", got, want)
	}
	if _, err := a.Allocate("b", 2); !errors.Is(err, ErrExhausted) {
		t.Fatalf("Allocate past the range: err = %v, want ErrExhausted", err)
	}
	if a.Free() != 1 {
		t.Fatalf("Free = %d after a refused allocation, want 1 (all or none)", a.Free())
	}
	a.Release("a")
	if a.Free() != 4 {
		t.Fatalf("Free = %d after Release, want 4", a.Free())
	}
	// The search resumes after the last allocated port, so a freed port is
	// not handed out again at once.
	got, err = a.Allocate("c", 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{103, 100}; !equal(got, want) {
		t.Fatalf("Allocate after release = %v, want %v", got, want)
	}
}

func TestReserve(t *testing.T) {
	a := New(100, 109)
	if err := a.Reserve("a", 105, 2000); err != nil {
		t.Fatal(err)
	}
	if err := a.Reserve("b", 105); err == nil {
		t.Fatal("Reserve of a port held by another owner succeeded")
	}
	if err := a.Reserve("a", 105); err != nil {
		t.Fatalf("Reserve by the same owner again: %v", err)
	}
	if a.Free() != 9 {
		t.Fatalf("Free = %d, want 9 (the out-of-range port does not count)", a.Free())
	}
	got, _ := a.Allocate("c", 10-1)
	for _, p := range got {
		if p == 105 {
			t.Fatalf("Allocate handed out reserved port 105: %v", got)
		}
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestAllocatePassesOverHeldPorts checks that a port another process holds
// is not handed out, and that a range with too few free ports is refused
// without reserving any.
func TestAllocatePassesOverHeldPorts(t *testing.T) {
	held := map[int]bool{100: true, 102: true}
	a := NewChecked(100, 104, func(p int) bool { return held[p] })
	got, err := a.Allocate("job-1", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != 101 || got[1] != 103 {
		t.Errorf("Allocate = %v, want [101 103]", got)
	}
	if _, err := a.Allocate("job-2", 2); !errors.Is(err, ErrExhausted) {
		t.Errorf("Allocate of 2 with 1 port free = %v, want ErrExhausted", err)
	}
	got, err = a.Allocate("job-3", 1)
	if err != nil || len(got) != 1 || got[0] != 104 {
		t.Errorf("Allocate after the refusal = %v, %v; want [104]", got, err)
	}
}
