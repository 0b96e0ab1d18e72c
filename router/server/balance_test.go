package server

import (
	"testing"
	"time"
)

func newBackends(n int) []*backend {
	bs := make([]*backend, n)
	for i := range bs {
		bs[i] = &backend{addr: string(rune('a' + i))}
	}
	return bs
}

func TestPickPrefersFewerInFlight(t *testing.T) {
	bs := newBackends(2)
	bs[0].inflight.Store(10)
	for i := 0; i < 100; i++ {
		if got := pick(bs, nil); got != bs[1] {
			t.Fatalf("pick = %s, want the idle backend b", got.addr)
		}
	}
}

// With power of two choices the busiest of many backends is picked only
// when both samples are it, which cannot happen with distinct samples.
func TestPickNeverChoosesBusiest(t *testing.T) {
	bs := newBackends(5)
	for i, b := range bs {
		b.inflight.Store(int64(i))
	}
	counts := map[string]int{}
	for i := 0; i < 2000; i++ {
		counts[pick(bs, nil).addr]++
	}
	if counts["e"] != 0 {
		t.Errorf("busiest backend picked %d times", counts["e"])
	}
	if counts["a"] <= counts["d"] {
		t.Errorf("idlest picked %d times, second busiest %d: want idle preferred", counts["a"], counts["d"])
	}
}

func TestPickSkipsTriedAndFailed(t *testing.T) {
	bs := newBackends(3)
	bs[1].markFailed(time.Now())
	for i := 0; i < 100; i++ {
		if got := pick(bs, bs[:1]); got != bs[2] {
			t.Fatalf("pick = %s, want c (a tried, b failed)", got.addr)
		}
	}
	// A failed backend is still used when it is all that is left.
	if got := pick(bs, []*backend{bs[0], bs[2]}); got != bs[1] {
		t.Errorf("pick = %v, want the failed backend b as last resort", got)
	}
	if got := pick(bs, bs); got != nil {
		t.Errorf("pick with every backend tried = %s, want nil", got.addr)
	}
	if got := pick(nil, nil); got != nil {
		t.Errorf("pick from empty pool = %s, want nil", got.addr)
	}
}

func TestPickSpreadsEqualLoad(t *testing.T) {
	bs := newBackends(4)
	counts := map[string]int{}
	for i := 0; i < 4000; i++ {
		counts[pick(bs, nil).addr]++
	}
	for _, b := range bs {
		if c := counts[b.addr]; c < 700 || c > 1300 {
			t.Errorf("backend %s picked %d of 4000 times, want about 1000", b.addr, c)
		}
	}
}
