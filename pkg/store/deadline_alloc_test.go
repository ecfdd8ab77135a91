//go:build !race

package store

import (
	"testing"
	"time"
)

func TestDeadlineDoesNotAllocate(t *testing.T) {
	var tbl deadlineTable
	tbl.context(time.Minute)
	// A replacement (one per millisecond at most) allocates; AllocsPerRun
	// rounds the few of a slow run down to the per-call steady state.
	allocs := testing.AllocsPerRun(1000, func() {
		_, cancel := tbl.context(time.Minute)
		cancel()
	})
	if allocs != 0 {
		t.Errorf("context allocates %.1f times per call, want 0", allocs)
	}
}
