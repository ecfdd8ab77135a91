// Package storetest is the conformance suite every store.Store passes: the
// in-process store (with a clock moved by hand, so refills are asserted
// exactly) and the Redis store (against a real redis-server, on real time,
// so timings are asserted as ranges computed from measured time).
package storetest

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/store"
)

// Clock is the time source of the store under test.
type Clock interface {
	// Now returns the store's current time.
	Now() time.Time
	// Advance lets d pass: a FakeClock jumps, the real clock sleeps.
	Advance(d time.Duration)
	// Exact reports whether time moves only by Advance, so that refills
	// can be asserted to the microsecond.
	Exact() bool
}

// FakeClock is a Clock that moves only when told. Pass its Now to the
// store (memory.WithClock).
type FakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewFakeClock returns a clock reading start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{t: start} }

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Exact reports true.
func (c *FakeClock) Exact() bool { return true }

// RealClock is the wall clock; Advance sleeps.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Advance sleeps for d.
func (RealClock) Advance(d time.Duration) { time.Sleep(d) }

// Exact reports false.
func (RealClock) Exact() bool { return false }

// MaxStale is the maxStale the suite passes to IsRevoked.
const MaxStale = time.Second

// slack is how far a duration reported by a store on real time may be
// below the exact value: the time that passed between the calls of a test.
// It is a correctness bound, not a speed assertion: each check below is
// phrased so that a slow machine only makes it looser.
const slack = 10 * time.Second

// Options relax the suite for a limiter that legitimately differs from an
// exact token bucket.
type Options struct {
	// UnderAdmit is how many tokens fewer than an exact bucket the
	// limiter may admit while a bucket refills: a leasing limiter
	// (ratelimit sync: lease) holds up to a batch of tokens that the
	// bucket does not count. It never admits more.
	UnderAdmit int
}

// Run runs the conformance suite. newStore returns a fresh store for one
// subtest (closed by the caller's cleanup) and its clock.
func Run(t *testing.T, newStore func(t *testing.T) (store.Store, Clock)) {
	RunWith(t, Options{}, newStore)
}

// RunWith is Run with the suite relaxed by opts.
func RunWith(t *testing.T, opts Options, newStore func(t *testing.T) (store.Store, Clock)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, c Clock)
	}{
		{"BurstThenReject", testBurst},
		{"Refill", func(t *testing.T, s store.Store, c Clock) { testRefill(t, s, c, opts.UnderAdmit) }},
		{"RefillHasNoDrift", testNoDrift},
		{"Cost", testCost},
		{"KeyIsolation", testKeyIsolation},
		{"ResetIsTimeUntilFull", testReset},
		{"RetryAfterNeverEarly", testRetryAfter},
		{"ConcurrentTakersNeverOverAdmit", testConcurrent},
		{"InvalidRate", testInvalidRate},
		{"RevokeJTI", testRevokeJTI},
		{"RevokedAtOnce", testRevokedAtOnce},
		{"RevokeAllBoundary", testRevokeAll},
		{"RevocationsExpire", testRevocationExpiry},
		{"MarkNeverMovesBackwards", testMarkMonotonic},
		{"RevokeInThePast", testRevokePast},
		{"RevokeAllNeedsTTL", testRevokeAllTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := newStore(t)
			tt.fn(t, s, c)
		})
	}
}

// key returns a bucket key unique to the running subtest.
func key(t *testing.T, suffix string) []byte {
	return []byte(t.Name() + "|" + suffix)
}

func take(t *testing.T, s store.Store, k []byte, r store.Rate, cost int64) store.Result {
	t.Helper()
	res, err := s.Take(context.Background(), k, r, cost)
	if err != nil {
		t.Fatalf("Take(%q): %v", k, err)
	}
	return res
}

// within checks got is in [want-slack, want] (real time only makes durations
// shrink) or exactly want on an exact clock.
func within(t *testing.T, c Clock, what string, got, want time.Duration) {
	t.Helper()
	if c.Exact() {
		if got != want {
			t.Errorf("%s = %v, want exactly %v", what, got, want)
		}
		return
	}
	if got > want || got < want-slack {
		t.Errorf("%s = %v, want in [%v, %v]", what, got, want-slack, want)
	}
}

func testBurst(t *testing.T, s store.Store, c Clock) {
	r := store.Rate{Limit: 1, Period: time.Hour, Burst: 5}
	k := key(t, "k")
	for i := int64(1); i <= 5; i++ {
		res := take(t, s, k, r, 1)
		if !res.Allowed || res.Remaining != 5-i || res.RetryAfter != 0 {
			t.Fatalf("take %d = %+v, want allowed with %d remaining", i, res, 5-i)
		}
	}
	for i := 0; i < 3; i++ {
		res := take(t, s, k, r, 1)
		if res.Allowed || res.Remaining != 0 {
			t.Fatalf("take past burst = %+v, want rejected with 0 remaining", res)
		}
		within(t, c, "RetryAfter", res.RetryAfter, time.Hour)
		within(t, c, "Reset", res.Reset, 5*time.Hour)
	}
}

func testRefill(t *testing.T, s store.Store, c Clock, underAdmit int) {
	if c.Exact() {
		// 3 tokens per second: a token every 333333.3µs.
		r := store.Rate{Limit: 3, Period: time.Second, Burst: 3}
		k := key(t, "k")
		for i := 0; i < 3; i++ {
			take(t, s, k, r, 1)
		}
		c.Advance(333333 * time.Microsecond)
		res := take(t, s, k, r, 1)
		if res.Allowed || res.RetryAfter != time.Microsecond {
			t.Fatalf("after 333333µs: %+v, want rejected with RetryAfter 1µs", res)
		}
		c.Advance(time.Microsecond)
		if res = take(t, s, k, r, 1); !res.Allowed || res.Remaining != 0 {
			t.Fatalf("after 333334µs: %+v, want allowed with 0 remaining", res)
		}
		c.Advance(time.Hour)
		if res = take(t, s, k, r, 1); !res.Allowed || res.Remaining != 2 {
			t.Fatalf("after an hour: %+v, want a full bucket (2 remaining after one take)", res)
		}
		return
	}
	// 50 tokens per second: a token every 20ms.
	const perSec = 50
	r := store.Rate{Limit: perSec, Period: time.Second, Burst: 5}
	k := key(t, "k")
	start := time.Now()
	for i := 0; i < 5; i++ {
		take(t, s, k, r, 1)
	}
	drained := time.Now()
	c.Advance(120 * time.Millisecond)
	counting := time.Now()
	n := 0
	for take(t, s, k, r, 1).Allowed {
		n++
		if n > 1000 {
			t.Fatal("bucket never ran dry")
		}
	}
	end := time.Now()
	// The bucket holds at most the burst however long the refill took
	// (a loaded host may sleep well past 120ms).
	lo := min(int(counting.Sub(drained)*perSec/time.Second)-1, int(r.Burst)) - underAdmit
	hi := int(end.Sub(start)*perSec/time.Second) + 1
	if n < lo || n > hi {
		t.Fatalf("admitted %d after refilling, want %d..%d for %v of refill at %d/s",
			n, lo, hi, counting.Sub(drained), perSec)
	}
	t.Logf("admitted %d after %v (bounds %d..%d)", n, counting.Sub(drained), lo, hi)
}

func testNoDrift(t *testing.T, s store.Store, c Clock) {
	if !c.Exact() {
		t.Skip("needs a clock moved by hand")
	}
	// 3 tokens per second taken in steps of a third of a second, each step
	// truncated to the microsecond so the steps are uneven: 100 s must yield
	// exactly 300 tokens, no more and no fewer.
	r := store.Rate{Limit: 3, Period: time.Second, Burst: 3}
	k := key(t, "k")
	for i := 0; i < 3; i++ {
		take(t, s, k, r, 1)
	}
	admitted := 0
	var elapsed time.Duration
	for i := 1; i <= 300; i++ {
		next := time.Duration(i) * time.Second / 3 / time.Microsecond * time.Microsecond
		c.Advance(next - elapsed)
		elapsed = next
		if take(t, s, k, r, 1).Allowed {
			admitted++
		}
	}
	for take(t, s, k, r, 1).Allowed {
		admitted++
	}
	if elapsed != 100*time.Second || admitted != 300 {
		t.Fatalf("after %v admitted %d, want 300 after 100s", elapsed, admitted)
	}
	// The bucket is empty at a whole token boundary: the next token is
	// ⌈1s/3⌉ away.
	if res := take(t, s, k, r, 1); res.Allowed || res.RetryAfter != 333334*time.Microsecond {
		t.Fatalf("after the drift run: %+v, want rejected with RetryAfter 333334µs", res)
	}
}

func testCost(t *testing.T, s store.Store, c Clock) {
	r := store.Rate{Limit: 1, Period: time.Hour, Burst: 10}
	k := key(t, "k")
	for _, want := range []int64{6, 2} {
		if res := take(t, s, k, r, 4); !res.Allowed || res.Remaining != want {
			t.Fatalf("take 4 = %+v, want allowed with %d remaining", res, want)
		}
	}
	res := take(t, s, k, r, 4)
	if res.Allowed || res.Remaining != 2 {
		t.Fatalf("take 4 of 2 = %+v, want rejected with 2 remaining", res)
	}
	within(t, c, "RetryAfter", res.RetryAfter, 2*time.Hour)
	if res := take(t, s, k, r, 2); !res.Allowed || res.Remaining != 0 {
		t.Fatalf("take 2 of 2 = %+v, want allowed with 0 remaining", res)
	}
}

func testKeyIsolation(t *testing.T, s store.Store, _ Clock) {
	r := store.Rate{Limit: 1, Period: time.Hour, Burst: 2}
	a := key(t, "a")
	for i := 0; i < 2; i++ {
		take(t, s, a, r, 1)
	}
	if take(t, s, a, r, 1).Allowed {
		t.Fatal("a drained bucket admitted")
	}
	for _, k := range [][]byte{key(t, "b"), key(t, "a|x"), key(t, "a1"), key(t, "A"), key(t, "")} {
		if res := take(t, s, k, r, 1); !res.Allowed || res.Remaining != 1 {
			t.Errorf("Take(%q) = %+v, want a fresh bucket", k, res)
		}
	}
}

func testReset(t *testing.T, s store.Store, c Clock) {
	// 2 tokens per second, bucket of 4: one take leaves it 500ms from full.
	r := store.Rate{Limit: 2, Period: time.Second, Burst: 4}
	if !c.Exact() {
		r = store.Rate{Limit: 2, Period: time.Hour, Burst: 4}
	}
	k := key(t, "k")
	res := take(t, s, k, r, 1)
	within(t, c, "Reset after one take", res.Reset, r.Period/2)
	res = take(t, s, k, r, 3)
	within(t, c, "Reset when empty", res.Reset, 2*r.Period)
	if c.Exact() {
		c.Advance(r.Period / 2)
		res = take(t, s, k, r, 1)
		// One token refilled and taken again: still empty, 2 periods away.
		within(t, c, "Reset after refill and take", res.Reset, 2*r.Period)
	}
}

func testRetryAfter(t *testing.T, s store.Store, c Clock) {
	if c.Exact() {
		r := store.Rate{Limit: 7, Period: time.Second, Burst: 2}
		k := key(t, "k")
		take(t, s, k, r, 2)
		for i := 0; i < 5; i++ {
			res := take(t, s, k, r, 1)
			if res.Allowed || res.RetryAfter <= 0 {
				t.Fatalf("empty bucket: %+v, want rejected with RetryAfter", res)
			}
			c.Advance(res.RetryAfter - time.Microsecond)
			if early := take(t, s, k, r, 1); early.Allowed {
				t.Fatalf("admitted 1µs before RetryAfter %v", res.RetryAfter)
			}
			c.Advance(time.Microsecond)
			if !take(t, s, k, r, 1).Allowed {
				t.Fatalf("rejected at RetryAfter %v", res.RetryAfter)
			}
		}
		return
	}
	r := store.Rate{Limit: 20, Period: time.Second, Burst: 1}
	k := key(t, "k")
	take(t, s, k, r, 1)
	for i := 0; i < 5; i++ {
		res := take(t, s, k, r, 1)
		if res.Allowed {
			// The previous round's sleep overshot enough to refill.
			take(t, s, k, r, 1)
			continue
		}
		if res.RetryAfter <= 0 || res.RetryAfter > r.Period/time.Duration(r.Limit) {
			t.Fatalf("RetryAfter = %v, want in (0, %v]", res.RetryAfter, r.Period/time.Duration(r.Limit))
		}
		c.Advance(res.RetryAfter)
		if got := take(t, s, k, r, 1); !got.Allowed {
			t.Fatalf("rejected after waiting RetryAfter %v: %+v", res.RetryAfter, got)
		}
	}
}

func testConcurrent(t *testing.T, s store.Store, _ Clock) {
	const (
		workers  = 8
		requests = 50
		capacity = 37
	)
	r := store.Rate{Limit: 1, Period: 24 * time.Hour, Burst: capacity}
	k := key(t, "k")
	var admitted, failed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < requests; i++ {
				res, err := s.Take(context.Background(), k, r, 1)
				switch {
				case err != nil:
					failed.Add(1)
				case res.Allowed:
					admitted.Add(1)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d takes failed", failed.Load())
	}
	if admitted.Load() != capacity {
		t.Fatalf("admitted %d of %d×%d against a bucket of %d", admitted.Load(), workers, requests, capacity)
	}
}

func testInvalidRate(t *testing.T, s store.Store, _ Clock) {
	tests := []struct {
		name     string
		giveRate store.Rate
		giveCost int64
	}{
		{"cost above burst", store.Rate{Limit: 1, Period: time.Second, Burst: 3}, 4},
		{"zero cost", store.Rate{Limit: 1, Period: time.Second, Burst: 3}, 0},
		{"zero limit", store.Rate{Limit: 0, Period: time.Second, Burst: 3}, 1},
		{"zero burst", store.Rate{Limit: 1, Period: time.Second, Burst: 0}, 1},
		{"sub-microsecond period", store.Rate{Limit: 1, Period: time.Nanosecond, Burst: 1}, 1},
		{"bucket too large", store.Rate{Limit: 1, Period: 24 * time.Hour, Burst: 1 << 40}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Take(context.Background(), key(t, "k"), tt.giveRate, tt.giveCost); err == nil {
				t.Fatalf("Take(%+v, cost %d) succeeded, want an error", tt.giveRate, tt.giveCost)
			}
		})
	}
}

func isRevoked(t *testing.T, s store.Store, jti, sub string, iatMs int64) bool {
	t.Helper()
	ok, err := s.IsRevoked(context.Background(), []byte(jti), []byte(sub), iatMs, MaxStale)
	if err != nil {
		t.Fatalf("IsRevoked(%q, %q, %d): %v", jti, sub, iatMs, err)
	}
	return ok
}

func testRevokeJTI(t *testing.T, s store.Store, c Clock) {
	ctx := context.Background()
	j1, j2, sub := t.Name()+"-j1", t.Name()+"-j2", t.Name()+"-sub"
	iat := c.Now().UnixMilli()
	if isRevoked(t, s, j1, sub, iat) {
		t.Fatal("revoked before Revoke")
	}
	if err := s.Revoke(ctx, j1, c.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !isRevoked(t, s, j1, sub, iat) {
		t.Fatal("jti not revoked after Revoke")
	}
	if !isRevoked(t, s, j1, "", iat) {
		t.Fatal("jti not revoked when checked without a subject")
	}
	if isRevoked(t, s, j2, sub, iat) {
		t.Fatal("another jti of the same subject is revoked")
	}
	if isRevoked(t, s, "", "", iat) {
		t.Fatal("an empty jti and subject is revoked")
	}
}

func testRevokedAtOnce(t *testing.T, s store.Store, c Clock) {
	// A store with a client-side cache must not serve the "not revoked" it
	// cached just before: the instance that revokes enforces it at once.
	ctx := context.Background()
	jti, sub := t.Name()+"-j", t.Name()+"-sub"
	for round := 0; round < 3; round++ {
		j := jti + strconv.Itoa(round)
		iat := c.Now().UnixMilli()
		if isRevoked(t, s, j, sub, iat) {
			t.Fatal("revoked before Revoke")
		}
		if err := s.Revoke(ctx, j, c.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if !isRevoked(t, s, j, sub, iat) {
			t.Fatalf("round %d: Revoke not seen by the next IsRevoked", round)
		}
	}
	iat := c.Now().UnixMilli()
	if isRevoked(t, s, "", sub, iat) {
		t.Fatal("subject revoked before RevokeAll")
	}
	c.Advance(2 * time.Millisecond)
	if err := s.RevokeAll(ctx, sub, c.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if !isRevoked(t, s, "", sub, iat) {
		t.Fatal("RevokeAll not seen by the next IsRevoked")
	}
}

func testRevokeAll(t *testing.T, s store.Store, c Clock) {
	ctx := context.Background()
	sub, other := t.Name()+"-sub", t.Name()+"-other"
	mark := c.Now().Add(-time.Minute).Truncate(time.Millisecond)
	if err := s.RevokeAll(ctx, sub, mark, time.Hour); err != nil {
		t.Fatal(err)
	}
	ms := mark.UnixMilli()
	tests := []struct {
		name string
		give int64
		want bool
	}{
		{"issued long before", ms - 3600_000, true},
		{"issued 1ms before", ms - 1, true},
		{"issued at the mark", ms, true},
		{"issued 1ms after", ms + 1, false},
		{"issued later", ms + 60_000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isRevoked(t, s, "jti-"+strconv.FormatInt(tt.give, 10), sub, tt.give); got != tt.want {
				t.Fatalf("IsRevoked(iat %d, mark %d) = %v, want %v", tt.give, ms, got, tt.want)
			}
		})
	}
	if isRevoked(t, s, "j", other, ms-1) {
		t.Fatal("another subject is revoked")
	}
	if isRevoked(t, s, "j", "", ms-1) {
		t.Fatal("a token without subject is revoked")
	}
}

func testRevocationExpiry(t *testing.T, s store.Store, c Clock) {
	ctx := context.Background()
	jti, sub := t.Name()+"-j", t.Name()+"-sub"
	life := 1500 * time.Millisecond
	if !c.Exact() {
		life = 300 * time.Millisecond
	}
	start := c.Now()
	if err := s.Revoke(ctx, jti, start.Add(life)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAll(ctx, sub, start, life); err != nil {
		t.Fatal(err)
	}
	iat := start.UnixMilli() - 1
	jtiLive, markLive := isRevoked(t, s, jti, "", 0), isRevoked(t, s, "x", sub, iat)
	if c.Now().Sub(start) < life-50*time.Millisecond && (!jtiLive || !markLive) {
		t.Fatalf("revocations not live before they expire: jti %v, mark %v", jtiLive, markLive)
	}
	if c.Exact() {
		c.Advance(life - time.Millisecond)
		if !isRevoked(t, s, jti, "", 0) || !isRevoked(t, s, "x", sub, iat) {
			t.Fatal("revocations gone 1ms before they expire")
		}
		c.Advance(time.Millisecond)
	} else {
		c.Advance(life + 100*time.Millisecond)
	}
	if isRevoked(t, s, jti, "", 0) {
		t.Fatal("jti still revoked after its expiry")
	}
	if isRevoked(t, s, "x", sub, iat) {
		t.Fatal("revoke-all mark still in force after its ttl")
	}
}

func testMarkMonotonic(t *testing.T, s store.Store, c Clock) {
	ctx := context.Background()
	sub := t.Name() + "-sub"
	t2 := c.Now().Truncate(time.Millisecond)
	t1 := t2.Add(-10 * time.Minute)
	if err := s.RevokeAll(ctx, sub, t2, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAll(ctx, sub, t1, time.Hour); err != nil {
		t.Fatal(err)
	}
	between := t1.Add(5 * time.Minute).UnixMilli()
	if !isRevoked(t, s, "j", sub, between) || !isRevoked(t, s, "j", sub, t2.UnixMilli()) {
		t.Fatal("an earlier RevokeAll moved the mark backwards")
	}
	t3 := t2.Add(time.Minute)
	if err := s.RevokeAll(ctx, sub, t3, time.Hour); err != nil {
		t.Fatal(err)
	}
	if !isRevoked(t, s, "j", sub, t3.UnixMilli()) {
		t.Fatal("a later RevokeAll did not move the mark forwards")
	}
	if isRevoked(t, s, "j", sub, t3.UnixMilli()+1) {
		t.Fatal("a token issued after the mark is revoked")
	}
}

func testRevokePast(t *testing.T, s store.Store, c Clock) {
	jti := t.Name() + "-j"
	if err := s.Revoke(context.Background(), jti, c.Now().Add(-time.Second)); err != nil {
		t.Fatalf("Revoke in the past: %v", err)
	}
	if isRevoked(t, s, jti, "", 0) {
		t.Fatal("a token that already expired is recorded as revoked")
	}
}

func testRevokeAllTTL(t *testing.T, s store.Store, c Clock) {
	if err := s.RevokeAll(context.Background(), t.Name(), c.Now(), 0); err == nil {
		t.Fatal("RevokeAll with ttl 0 succeeded, want an error")
	}
}
