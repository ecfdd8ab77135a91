package gateway

import (
	"os"
	"runtime/debug"
	"sync"

	"github.com/gatewayd/gatewayd/pkg/config"
)

// startRuntime holds the garbage collector's settings the process started
// with (GOGC, else config.DefaultGCPercent; GOMEMLIMIT, else none): what
// applies while the runtime: section leaves them unset.
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
		if _, ok := os.LookupEnv("GOGC"); !ok {
			startRuntime.gcPercent = config.DefaultGCPercent
		}
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
