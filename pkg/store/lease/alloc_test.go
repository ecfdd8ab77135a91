//go:build !race

package lease

import (
	"context"
	"hash/maphash"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/store"
)

// TestHitZeroAllocs checks the hit path: a take served from the local
// lease allocates nothing. The lease is large and the sizing window long,
// so no renewal (which allocates once, off the request path) runs during the
// measurement.
func TestHitZeroAllocs(t *testing.T) {
	srv := redistest.Start(t)
	st := connect(t, srv.Addr())
	l := newLimiter(t, st, Options{MaxBatch: 100000, Window: time.Hour, TTL: time.Hour})
	r := store.Rate{Limit: 1000000000, Period: time.Second, Burst: 1000000}
	key := []byte("203.0.113.54|user:42")
	ctx := context.Background()
	for i := 0; i < 20000; i++ {
		if _, err := l.Take(ctx, key, r, 1); err != nil {
			t.Fatal(err)
		}
	}
	if held := l.settle(t, string(key)); held < 5000 {
		t.Fatalf("%d tokens held, want a large lease", held)
	}
	n := testing.AllocsPerRun(1000, func() {
		if res, err := l.Take(ctx, key, r, 1); err != nil || !res.Allowed {
			t.Fatalf("take: %+v %v", res, err)
		}
	})
	if n != 0 {
		t.Errorf("%v allocs per lease hit, want 0", n)
	}
	if leases, _, _ := l.Stats(); leases == 0 {
		t.Error("no lease was taken")
	}
}

// TestRenewalAllocatesItsReplyOnly checks a renewal ahead of need, the
// background round trip of the lease path, against a real server through
// the guard: its flight is reused, its deadline is the shared one
// (store.CallContext), its key and arguments go out from pooled buffers,
// and the one allocation left is the array rueidis reads the lease
// script's reply into.
func TestRenewalAllocatesItsReplyOnly(t *testing.T) {
	srv := redistest.Start(t)
	st := connect(t, srv.Addr())
	l := newLimiter(t, st, Options{MaxBatch: 64, Window: time.Hour, TTL: time.Hour})
	r := store.Rate{Limit: 1000000000, Period: time.Second, Burst: 1000000}
	key := []byte("203.0.113.54|user:42")
	ctx := context.Background()
	for range 100 {
		if _, err := l.Take(ctx, key, r, 1); err != nil {
			t.Fatal(err)
		}
	}
	l.settle(t, string(key))
	sh := &l.shards[maphash.Bytes(l.seed, key)%numShards]
	sh.mu.Lock()
	e := sh.m[string(key)]
	sh.mu.Unlock()
	before, _, _ := l.Stats()
	renew := func() {
		sh.mu.Lock()
		e.tokens = 0 // so that the renewal is due
		sh.mu.Unlock()
		l.renewAhead(e)
	}
	for range 100 {
		renew()
	}
	allocs := testing.AllocsPerRun(2000, renew)
	if after, _, _ := l.Stats(); after-before < 2100 {
		t.Fatalf("%d renewals, want 2100", after-before)
	}
	if allocs != 1 {
		t.Errorf("a renewal allocates %.2f times, want 1 (the script's reply array)", allocs)
	}
}
