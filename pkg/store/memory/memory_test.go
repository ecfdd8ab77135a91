package memory_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/gatewayd/gatewayd/pkg/store/storetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (store.Store, storetest.Clock) {
		c := storetest.NewFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
		s := memory.New(memory.WithClock(c.Now))
		t.Cleanup(func() { _ = s.Close() })
		return s, c
	})
}

func TestConformanceRealClock(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (store.Store, storetest.Clock) {
		s := memory.New()
		t.Cleanup(func() { _ = s.Close() })
		return s, storetest.RealClock{}
	})
}

// waitLen polls s.Len until cond holds or a few seconds pass.
func waitLen(t *testing.T, s *memory.Store, cond func(b, r int) bool) (int, int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, r := s.Len()
		if cond(b, r) || time.Now().After(deadline) {
			return b, r
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestJanitorDropsFullBuckets(t *testing.T) {
	c := storetest.NewFakeClock(time.Unix(1_900_000_000, 0))
	s := memory.New(memory.WithClock(c.Now), memory.WithShards(4), memory.WithSweepInterval(time.Millisecond))
	defer s.Close()
	ctx := context.Background()
	r := store.Rate{Limit: 10, Period: time.Second, Burst: 10}
	const n = 5000
	for i := 0; i < n; i++ {
		if _, err := s.Take(ctx, []byte("k"+strconv.Itoa(i)), r, 1); err != nil {
			t.Fatal(err)
		}
	}
	// One token short of full for 100ms: nothing may be dropped yet.
	c.Advance(99 * time.Millisecond)
	time.Sleep(20 * time.Millisecond) // several sweeps of every shard
	if b, _ := s.Len(); b != n {
		t.Fatalf("%d buckets left before they refilled, want %d", b, n)
	}
	res, err := s.Take(ctx, []byte("k0"), r, 1)
	if err != nil || res.Remaining != 8 {
		t.Fatalf("bucket k0 after 99ms = %+v, %v: want its state kept (8 remaining)", res, err)
	}
	c.Advance(time.Millisecond)
	if b, _ := waitLen(t, s, func(b, _ int) bool { return b == 1 }); b != 1 {
		t.Fatalf("%d buckets left after all but k0 refilled, want 1", b)
	}
	// Sweeping 4999 of 5000 keys rebuilt the shard maps; k0 kept its state:
	// 8.99 tokens at 99ms, 9 at 100ms, 8 left after this take.
	if res, err = s.Take(ctx, []byte("k0"), r, 1); err != nil || res.Remaining != 8 {
		t.Fatalf("bucket k0 after the sweep = %+v, %v: want 8 remaining", res, err)
	}
	c.Advance(time.Second)
	if b, _ := waitLen(t, s, func(b, _ int) bool { return b == 0 }); b != 0 {
		t.Fatalf("%d buckets left after every bucket refilled, want 0", b)
	}
}

func TestJanitorDropsExpiredRevocations(t *testing.T) {
	c := storetest.NewFakeClock(time.Unix(1_900_000_000, 0))
	s := memory.New(memory.WithClock(c.Now), memory.WithShards(4), memory.WithSweepInterval(time.Millisecond))
	defer s.Close()
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		id := strconv.Itoa(i)
		if err := s.Revoke(ctx, "jti"+id, c.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeAll(ctx, "sub"+id, c.Now(), 2*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, r := s.Len(); r != 2000 {
		t.Fatalf("%d revocation entries, want 2000", r)
	}
	c.Advance(time.Minute)
	if _, r := waitLen(t, s, func(_, r int) bool { return r == 1000 }); r != 1000 {
		t.Fatalf("%d entries after the tokens expired, want the 1000 marks", r)
	}
	c.Advance(time.Minute)
	if _, r := waitLen(t, s, func(_, r int) bool { return r == 0 }); r != 0 {
		t.Fatalf("%d entries after the marks expired, want 0", r)
	}
}

func TestCloseStopsJanitor(t *testing.T) {
	s := memory.New(memory.WithSweepInterval(time.Millisecond))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	goleak.VerifyNone(t)
	// The store still answers after Close.
	if _, err := s.Take(context.Background(), []byte("k"), store.Rate{Limit: 1, Period: time.Second, Burst: 1}, 1); err != nil {
		t.Fatal(err)
	}
}

func TestClockGoingBackwards(t *testing.T) {
	c := storetest.NewFakeClock(time.Unix(1_900_000_000, 0))
	s := memory.New(memory.WithClock(c.Now))
	defer s.Close()
	ctx := context.Background()
	r := store.Rate{Limit: 1, Period: time.Second, Burst: 2}
	k := []byte("k")
	_, _ = s.Take(ctx, k, r, 2)
	c.Advance(-10 * time.Second)
	if res, _ := s.Take(ctx, k, r, 1); res.Allowed {
		t.Fatal("a clock stepping back refilled the bucket")
	}
	// Time between the new now and the old one is not counted twice.
	c.Advance(10*time.Second + 999*time.Millisecond)
	if res, _ := s.Take(ctx, k, r, 1); res.Allowed {
		t.Fatal("refilled from a time before the bucket was last seen")
	}
	c.Advance(time.Millisecond)
	if res, _ := s.Take(ctx, k, r, 1); !res.Allowed {
		t.Fatal("no token one second after the bucket emptied")
	}
}

func TestRateChangeClampsLevel(t *testing.T) {
	c := storetest.NewFakeClock(time.Unix(1_900_000_000, 0))
	s := memory.New(memory.WithClock(c.Now))
	defer s.Close()
	ctx := context.Background()
	k := []byte("k")
	_, _ = s.Take(ctx, k, store.Rate{Limit: 100, Period: time.Second, Burst: 100}, 1)
	res, err := s.Take(ctx, k, store.Rate{Limit: 5, Period: time.Second, Burst: 5}, 1)
	if err != nil || !res.Allowed || res.Remaining != 4 {
		t.Fatalf("after a smaller burst: %+v, %v; want the level clamped to the new burst (4 left)", res, err)
	}
}
