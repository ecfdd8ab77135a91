//go:build !race

package memory_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/gatewayd/gatewayd/pkg/store/storetest"
)

func TestZeroAllocs(t *testing.T) {
	s := memory.New()
	defer s.Close()
	ctx := context.Background()
	r := store.Rate{Limit: 1000, Period: time.Second, Burst: 1000}
	key := []byte("route|ip:192.0.2.1")
	jti, sub := []byte("3f1c2a"), []byte("user-42")
	_, _ = s.Take(ctx, key, r, 1)
	_ = s.Revoke(ctx, string(jti), time.Now().Add(time.Hour))
	_ = s.RevokeAll(ctx, string(sub), time.Now(), time.Hour)
	if n := testing.AllocsPerRun(1000, func() { _, _ = s.Take(ctx, key, r, 1) }); n != 0 {
		t.Errorf("Take: %v allocs, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = s.IsRevoked(ctx, jti, sub, 1, time.Second) }); n != 0 {
		t.Errorf("IsRevoked: %v allocs, want 0", n)
	}
}

// TestMemoryReturnsAfterBurst fills the store with a burst of keys, lets
// them refill and checks the janitor gives the memory back (maps included:
// Go maps never shrink by themselves).
func TestMemoryReturnsAfterBurst(t *testing.T) {
	c := storetest.NewFakeClock(time.Unix(1_900_000_000, 0))
	s := memory.New(memory.WithClock(c.Now), memory.WithSweepInterval(time.Millisecond))
	defer s.Close()
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := heap()
	ctx := context.Background()
	r := store.Rate{Limit: 1, Period: time.Second, Burst: 1}
	const n = 300_000
	key := make([]byte, 0, 32)
	for i := 0; i < n; i++ {
		key = strconv.AppendInt(append(key[:0], "client-"...), int64(i), 10)
		if _, err := s.Take(ctx, key, r, 1); err != nil {
			t.Fatal(err)
		}
	}
	full := heap()
	c.Advance(time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for b, _ := s.Len(); b > 0 && time.Now().Before(deadline); b, _ = s.Len() {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // one more pass over every shard
	after := heap()
	t.Logf("heap: %d KiB before, %d KiB with %d buckets, %d KiB after they refilled", base>>10, full>>10, n, after>>10)
	if grown, kept := full-base, int64(after)-int64(base); kept > int64(grown/10) {
		t.Fatalf("%d of %d bytes still held after every bucket refilled", kept, grown)
	}
}
