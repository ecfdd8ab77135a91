//go:build !race

package metrics

import (
	"testing"
	"time"
)

func TestObserveZeroAllocAfterFirst(t *testing.T) {
	r := ForRoute("metrics-alloc")
	r.Observe(0, 200, time.Millisecond)
	r.ObserveResponseSize(100)
	n := testing.AllocsPerRun(1000, func() {
		r.Observe(0, 200, time.Millisecond)
		r.ObserveResponseSize(100)
	})
	if n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

func TestObserveAttemptZeroAlloc(t *testing.T) {
	u := ForUpstream("metrics-alloc")
	u.ObserveAttempt(101, false)
	n := testing.AllocsPerRun(1000, func() {
		u.ObserveAttempt(200, false)
		u.ObserveAttempt(503, false)
		u.ObserveAttempt(0, true)
		u.ObserveAttempt(101, false)
	})
	if n != 0 {
		t.Fatalf("%v allocs", n)
	}
}
