//go:build !race

package redis_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
)

// TestRevocationCacheHitDoesNotAllocate: against a real server, a
// revocation check answered from the client-side cache allocates nothing,
// through the guard the gateway uses (IsRevoked and CachedRevoked) and on
// the store itself, over 1000 tokens of 1000 users.
func TestRevocationCacheHitDoesNotAllocate(t *testing.T) {
	srv := redistest.Start(t)
	cache := true
	cfg := &config.Redis{Addrs: []string{srv.Addr()}, ClientSideCache: &cache}
	s, err := redis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := redis.Guard(s, cfg)
	t.Cleanup(func() { _ = g.Close() })
	const users, maxStale = 1000, time.Minute
	jtis, subs := make([][]byte, users), make([][]byte, users)
	iat := time.Now().UnixMilli()
	ctx := context.Background()
	for i := range users {
		jtis[i] = []byte("0b7e2d3c-9f4a-4c1e-8d2b-" + strconv.Itoa(100000000000+i))
		subs[i] = []byte("user-" + strconv.Itoa(i))
		if _, err := g.IsRevoked(ctx, jtis[i], subs[i], iat, maxStale); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.RevokeAll(ctx, "user-7", time.Now().Add(time.Second), time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, err := g.IsRevoked(ctx, jtis[7], subs[7], iat, maxStale); err != nil || !ok {
		t.Fatalf("revoked user: %v, %v", ok, err)
	}
	gets := info(t, srv, "commandstats", "cmdstat_get")
	checks := []struct {
		name string
		fn   func(i int) (bool, bool)
	}{
		{"guarded IsRevoked", func(i int) (bool, bool) {
			c, cancel := store.CallContext(50 * time.Millisecond)
			defer cancel()
			revoked, err := g.IsRevoked(c, jtis[i], subs[i], iat, maxStale)
			return revoked, err == nil
		}},
		{"guarded CachedRevoked", func(i int) (bool, bool) { return g.CachedRevoked(jtis[i], subs[i], iat, maxStale) }},
		{"store IsRevoked", func(i int) (bool, bool) {
			revoked, err := s.IsRevoked(ctx, jtis[i], subs[i], iat, maxStale)
			return revoked, err == nil
		}},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			i := 0
			allocs := testing.AllocsPerRun(2*users, func() {
				revoked, ok := c.fn(i % users)
				if !ok || revoked != (i%users == 7) {
					t.Fatalf("token %d: revoked %v, answered %v", i%users, revoked, ok)
				}
				i++
			})
			if allocs != 0 {
				t.Errorf("%.2f allocations per cached revocation check, want 0", allocs)
			}
		})
	}
	if after := info(t, srv, "commandstats", "cmdstat_get"); after != gets {
		t.Errorf("%d GETs reached the server for cached checks, want 0", after-gets)
	}
}

// TestRereadAllocations: a revocation check past maxStale whose keys the
// server still tracks (absent at their last read) is a plain re-read:
// about 3 allocations, all in rueidis' DoMulti (the result slice it hands
// back and the holder of its pool; its queue entry), against about 25 for
// a read through the client-side cache.
func TestRereadAllocations(t *testing.T) {
	srv := redistest.Start(t)
	s := connect(t, srv.Addr(), true)
	const users = 100
	jtis, subs := make([][]byte, users), make([][]byte, users)
	ctx := context.Background()
	for i := range users {
		jtis[i] = []byte("0b7e2d3c-9f4a-4c1e-8d2b-" + strconv.Itoa(100000000000+i))
		subs[i] = []byte("user-" + strconv.Itoa(i))
		if _, err := s.IsRevoked(ctx, jtis[i], subs[i], 1, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	multis := info(t, srv, "commandstats", "cmdstat_multi")
	i := 0
	// A maxStale of 1ns: every check is a re-read.
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		if revoked, err := s.IsRevoked(ctx, jtis[i%users], subs[i%users], 1, time.Nanosecond); err != nil || revoked {
			t.Fatalf("IsRevoked = %v, %v", revoked, err)
		}
	})
	if m := info(t, srv, "commandstats", "cmdstat_multi"); m != multis {
		t.Fatalf("%d reads through the cache during the re-reads, want 0", m-multis)
	}
	if allocs > 3 {
		t.Errorf("a plain re-read allocates %.0f times, want at most 3", allocs)
	}
	t.Logf("%.0f allocations per re-read", allocs)
}
