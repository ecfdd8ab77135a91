package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"go.uber.org/zap"
)

const runtimeConfig = `version: 1
listen: "127.0.0.1:0"
admin: { listen: "127.0.0.1:1" }
%s
upstreams:
  app: { targets: ["http://127.0.0.1:9"] }
routes:
  - { name: r, match: { path_prefix: / }, upstream: app }
`

// TestRuntimeSettingsApplyAndReload: gc_percent and memory_limit reach the
// runtime at start, change on reload, and a reload without them returns to
// the settings the process started with.
func TestRuntimeSettingsApplyAndReload(t *testing.T) {
	processGC := debug.SetGCPercent(-1)
	debug.SetGCPercent(processGC)
	startLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(processGC)
		debug.SetMemoryLimit(startLimit)
	})
	// Unset, GOGC applies, else the gateway's default.
	startGC := config.DefaultGCPercent
	if _, ok := os.LookupEnv("GOGC"); ok {
		startGC = processGC
	}
	current := func() (int, int64) {
		gc := debug.SetGCPercent(-1)
		debug.SetGCPercent(gc)
		return gc, debug.SetMemoryLimit(-1)
	}

	file := filepath.Join(t.TempDir(), "gateway.yaml")
	write := func(section string) {
		t.Helper()
		body := []byte(fmt.Sprintf(runtimeConfig, section))
		if err := os.WriteFile(file, body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("runtime: { gc_percent: 40, memory_limit: 96MiB }")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	st := memory.New()
	defer st.Close()
	gw, err := New(cfg, Options{Registry: builtin.Registry(), Logger: zap.NewNop(), Store: st, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = gw.Shutdown(0, time.Second) }()
	if gc, limit := current(); gc != 40 || limit != 96<<20 {
		t.Fatalf("after New: GOGC %d, memory limit %d; want 40, %d", gc, limit, 96<<20)
	}

	write("runtime: { gc_percent: 75 }")
	if _, err := gw.Reload(); err != nil {
		t.Fatal(err)
	}
	if gc, limit := current(); gc != 75 || limit != startLimit {
		t.Fatalf("after reload: GOGC %d, memory limit %d; want 75, %d", gc, limit, startLimit)
	}

	write("")
	if _, err := gw.Reload(); err != nil {
		t.Fatal(err)
	}
	if gc, limit := current(); gc != startGC || limit != startLimit {
		t.Fatalf("after removing runtime: GOGC %d, memory limit %d; want the start values %d, %d", gc, limit, startGC, startLimit)
	}

	// A reload with an invalid value fails and leaves the settings alone.
	write("runtime: { gc_percent: 5 }")
	if _, err := gw.Reload(); err == nil {
		t.Fatal("reload with gc_percent: 5 succeeded")
	}
	if gc, _ := current(); gc != startGC {
		t.Fatalf("after a failed reload: GOGC %d, want %d", gc, startGC)
	}
}
