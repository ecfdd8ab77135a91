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

// TestTakeDoesNotAllocate: against a real server, an exact Take (one
// script call) allocates nothing in steady state, on the store itself and
// through the guard the gateway uses, over 100 buckets.
func TestTakeDoesNotAllocate(t *testing.T) {
	srv := redistest.Start(t)
	cfg := &config.Redis{Addrs: []string{srv.Addr()}}
	s, err := redis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := redis.Guard(s, cfg)
	t.Cleanup(func() { _ = g.Close() })
	keys := make([][]byte, 100)
	for i := range keys {
		keys[i] = []byte("user:" + strconv.Itoa(i))
	}
	r := store.Rate{Limit: 1000000, Period: time.Second, Burst: 1000000}
	ctx := context.Background()
	checks := []struct {
		name string
		fn   func(key []byte) (store.Result, error)
	}{
		{"store", func(key []byte) (store.Result, error) { return s.Take(ctx, key, r, 1) }},
		{"guarded", func(key []byte) (store.Result, error) {
			c, cancel := store.CallContext(time.Second)
			defer cancel()
			return g.Take(c, key, r, 1)
		}},
	}
	for _, check := range checks {
		for _, k := range keys {
			if _, err := check.fn(k); err != nil {
				t.Fatal(err)
			}
		}
		i := 0
		allocs := testing.AllocsPerRun(2000, func() {
			i++
			if res, err := check.fn(keys[i%len(keys)]); err != nil || !res.Allowed {
				t.Fatalf("%s: Take = %+v, %v", check.name, res, err)
			}
		})
		// Guarded: the shared deadline (store.CallContext) allocates its
		// context and channel once per millisecond in which calls are
		// made, less than once per call, which AllocsPerRun's integer
		// average rounds away.
		if allocs != 0 {
			t.Errorf("%s: Take allocates %.2f times per call, want 0", check.name, allocs)
		}
	}
}

// TestLeaseAllocatesItsReplyOnly: a lease renewal round trip on the store
// allocates once, the array rueidis reads the script's 7-value reply into;
// its key and arguments go out from a pooled buffer.
func TestLeaseAllocatesItsReplyOnly(t *testing.T) {
	srv := redistest.Start(t)
	s, err := redis.New(&config.Redis{Addrs: []string{srv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	key := []byte("user:42")
	r := store.Rate{Limit: 1000000000, Period: time.Second, Burst: 1000000000}
	ctx := context.Background()
	var seq uint64
	renew := func() {
		seq++
		g, err := s.Lease(ctx, key, store.LeaseRequest{
			Rate: r, Holder: "0123456789abcdef01234567", Seq: seq - 1, NewSeq: seq,
			Carry: 3, Want: 64, TTL: 2 * time.Second,
		})
		if err != nil || !g.OK || g.Granted == 0 {
			t.Fatalf("Lease = %+v, %v", g, err)
		}
	}
	for range 100 {
		renew()
	}
	if allocs := testing.AllocsPerRun(2000, renew); allocs != 1 {
		t.Errorf("a lease renewal allocates %.2f times, want 1 (its reply array)", allocs)
	}
}
