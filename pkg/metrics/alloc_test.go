//go:build !race

package metrics

import (
	"testing"
	"time"
)

func TestObserveZeroAllocAfterFirst(t *testing.T) {
	r := ForRoute("metrics-alloc")
	r.Observe(0, 200, time.Millisecond)
	n := testing.AllocsPerRun(1000, func() { r.Observe(0, 200, time.Millisecond) })
	if n != 0 {
		t.Fatalf("%v allocs", n)
	}
}
