package retry

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errAway = errors.New("away")

func TestUntil(t *testing.T) {
	errBad := errors.New("malformed")
	tests := []struct {
		name     string
		results  []error // fn's answers, in turn; the last repeats
		cancelAt int     // the call during which ctx ends; 0: none
		want     error
		calls    int
	}{
		{name: "at once", results: []error{nil}, want: nil, calls: 1},
		{name: "after two failures", results: []error{errAway, errAway, nil}, want: nil, calls: 3},
		{name: "permanent", results: []error{errAway, Permanent(errBad)}, want: errBad, calls: 2},
		{name: "context ends", results: []error{errAway}, cancelAt: 3, want: errAway, calls: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			err := Until(ctx, slog.New(slog.DiscardHandler), "open", func(context.Context) error {
				r := tt.results[min(calls, len(tt.results)-1)]
				calls++
				if calls == tt.cancelAt {
					cancel()
				}
				return r
			})
			if err != tt.want {
				t.Errorf("Until = %v, want %v", err, tt.want)
			}
			if calls != tt.calls {
				t.Errorf("%d calls, want %d", calls, tt.calls)
			}
		})
	}
}

func TestPermanentOfNil(t *testing.T) {
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
}
