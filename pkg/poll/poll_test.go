package poll

import (
	"errors"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	n := 0
	took := Until(t, time.Second, "three checks", func() bool { n++; return n == 3 })
	if n != 3 || took < 2*Interval {
		t.Errorf("checked %d times in %s, want 3 checks two intervals apart", n, took)
	}
}

func TestUntilNil(t *testing.T) {
	n := 0
	UntilNil(t, time.Second, "two checks", func() error {
		if n++; n < 2 {
			return errors.New("not yet")
		}
		return nil
	})
	if n != 2 {
		t.Errorf("checked %d times, want 2", n)
	}
}

// recorder is a testing.TB that records a failure instead of stopping.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	panic(r)
}

func TestUntilFailsAfterDeadline(t *testing.T) {
	r := &recorder{TB: t}
	func() {
		defer func() {
			if v := recover(); v != r {
				panic(v)
			}
		}()
		Until(r, 3*Interval, "never", func() bool { return false })
	}()
	if r.failed == "" {
		t.Error("Until did not fail after its deadline")
	}
}
