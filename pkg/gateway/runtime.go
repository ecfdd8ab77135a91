package gateway

import (
	"runtime/debug"
	"sync"

	"github.com/gatewayd/gatewayd/pkg/config"
)

// startRuntime holds the garbage collector's settings the process started
// with (GOGC, GOMEMLIMIT or the runtime's defaults): what a reload that
// removes a runtime: setting returns to.
var startRuntime struct {
	once      sync.Once
	gcPercent int
	limit     int64
}

// applyRuntime applies the runtime: section to the process: gc_percent and
// memory_limit when set, else the settings the process started with.
func applyRuntime(r config.Runtime) {
	startRuntime.once.Do(func() {
		startRuntime.gcPercent = debug.SetGCPercent(-1)
		debug.SetGCPercent(startRuntime.gcPercent)
		startRuntime.limit = debug.SetMemoryLimit(-1) // a negative limit reads it
	})
	gc, limit := startRuntime.gcPercent, startRuntime.limit
	if r.GCPercent != 0 {
		gc = r.GCPercent
	}
	if r.MemoryLimit != 0 {
		limit = int64(r.MemoryLimit)
	}
	debug.SetGCPercent(gc)
	debug.SetMemoryLimit(limit)
}
