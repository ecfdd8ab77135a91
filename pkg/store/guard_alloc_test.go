//go:build !race

package store_test

import (
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
)

// TestGuardDoesNotAllocate: the hot-path calls through the guard (deadline,
// admission, breaker, hand-off to a runner) allocate nothing in steady
// state.
func TestGuardDoesNotAllocate(t *testing.T) {
	g := store.NewGuarded(memory.New(), nil, store.GuardOptions{})
	defer g.Close()
	key, jti, sub := []byte("bucket|ip:192.0.2.1"), []byte("jti-1"), []byte("sub-1")
	call := func() {
		ctx, cancel := store.CallContext(time.Minute)
		if _, err := g.Take(ctx, key, rate, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := g.IsRevoked(ctx, jti, sub, 1, time.Second); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	call()
	allocs := testing.AllocsPerRun(1000, call)
	if allocs != 0 {
		t.Errorf("a guarded Take and IsRevoked allocate %.1f times, want 0", allocs)
	}
}
