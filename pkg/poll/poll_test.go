package poll

import (
	"context"
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

func TestWait(t *testing.T) {
	errLast := errors.New("still down")
	errGone := errors.New("the process exited")
	tests := []struct {
		name   string
		within time.Duration
		check  func(n int, stop context.CancelCauseFunc) error
		want   []error // errors.Is each of these; none for nil
		checks int     // how many checks it makes; 0 for any number
	}{
		{
			name:   "holds on the third check",
			within: time.Second,
			check: func(n int, _ context.CancelCauseFunc) error {
				if n < 3 {
					return errLast
				}
				return nil
			},
			checks: 3,
		},
		{
			name:   "deadline wraps the last error",
			within: 3 * Interval,
			check:  func(int, context.CancelCauseFunc) error { return errLast },
			want:   []error{errLast},
		},
		{
			name:   "a cancelled context stops at once with its cause",
			within: time.Minute,
			check: func(n int, stop context.CancelCauseFunc) error {
				if n == 2 {
					stop(errGone)
				}
				return errLast
			},
			want:   []error{errGone, errLast},
			checks: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, stop := context.WithCancelCause(context.Background())
			defer stop(nil)
			n := 0
			err := Wait(ctx, tt.within, func() error { n++; return tt.check(n, stop) })
			if len(tt.want) == 0 && err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want one wrapping %v", err, w)
				}
			}
			if tt.checks != 0 && n != tt.checks {
				t.Errorf("checked %d times, want %d", n, tt.checks)
			}
		})
	}
}

func TestHolds(t *testing.T) {
	n := 0
	start := time.Now()
	Holds(t, 3*Interval, "always", func() bool { n++; return true })
	if took := time.Since(start); n < 3 || took < 3*Interval {
		t.Errorf("checked %d times in %s, want at least 3 checks over %s", n, took, 3*Interval)
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

// fails runs f with a recorder and reports whether f failed it.
func fails(t *testing.T, f func(testing.TB)) bool {
	r := &recorder{TB: t}
	func() {
		defer func() {
			if v := recover(); v != nil && v != r {
				panic(v)
			}
		}()
		f(r)
	}()
	return r.failed != ""
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name string
		f    func(testing.TB)
	}{
		{"Until after its deadline", func(tb testing.TB) { Until(tb, 3*Interval, "never", func() bool { return false }) }},
		{"UntilNil after its deadline", func(tb testing.TB) {
			UntilNil(tb, 3*Interval, "never", func() error { return errors.New("no") })
		}},
		{"Holds once false", func(tb testing.TB) {
			n := 0
			Holds(tb, time.Minute, "twice", func() bool { n++; return n <= 2 })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !fails(t, tt.f) {
				t.Error("did not fail the test")
			}
		})
	}
}
