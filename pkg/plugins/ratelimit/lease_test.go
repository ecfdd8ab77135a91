package ratelimit

import (
	"strconv"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/valyala/fasthttp"
)

// The tests of this file give the store a long store_timeout: they check
// what the limiter admits, not how it copes with a slow store on a loaded
// machine (TestStoreTimeout does).

// TestRedisLease: with a slow limit, sync: lease leases one token at a time
// and answers exactly as sync: exact does (TestRedisStore).
func TestRedisLease(t *testing.T) {
	_, s := newRedis(t)
	l := build(t, "users", "limit: 2\nperiod: 1h\nsync: lease\nstore_timeout: 2s", s)
	if l.lease == nil {
		t.Fatal("sync: lease on Redis does not lease")
	}
	for i, want := range []string{"1", "0"} {
		r := newRequest("192.0.2.1")
		if v := r.run(l); v != plugins.Next {
			t.Fatalf("request %d: verdict %v", i, v)
		}
		if got := r.header("RateLimit-Remaining"); got != want {
			t.Fatalf("request %d: remaining %q, want %q", i, got, want)
		}
	}
	r := newRequest("192.0.2.1")
	if v := r.run(l); v != plugins.Done || r.ctx.Response.StatusCode() != fasthttp.StatusTooManyRequests {
		t.Fatalf("third request: verdict %v status %d, want 429", v, r.ctx.Response.StatusCode())
	}
	if got := r.header("Retry-After"); got != "1800" {
		t.Fatalf("Retry-After = %q, want 1800", got)
	}
}

// TestRedisLeaseHeaders: on a busy key the headers describe this
// instance's view, the bucket at the last lease plus the lease's unused
// tokens: never above the burst, never below what was admitted, and Reset
// consistent with Remaining.
func TestRedisLeaseHeaders(t *testing.T) {
	_, s := newRedis(t)
	// 100000/h refills 28 tokens a second; batches of up to 6 (a quarter
	// second's refill).
	l := build(t, "users", "limit: 100000\nperiod: 1h\nburst: 1000\nsync: lease\nstore_timeout: 2s", s)
	const n = 300
	start := time.Now()
	for i := 1; i <= n; i++ {
		r := newRequest("192.0.2.1")
		if v := r.run(l); v != plugins.Next {
			t.Fatalf("request %d: verdict %v", i, v)
		}
		rem, err := strconv.ParseInt(r.header("RateLimit-Remaining"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		refill := int64(time.Since(start).Seconds()*100000/3600) + 1
		if lo, hi := 1000-int64(i), 1000-int64(i)+refill; rem < lo || rem > hi {
			t.Fatalf("request %d: remaining %d, want %d..%d", i, rem, lo, hi)
		}
		reset, _ := strconv.ParseInt(r.header("RateLimit-Reset"), 10, 64)
		if want := (1000 - rem) * 3600 / 100000; reset < want || reset > want+1 {
			t.Fatalf("request %d: reset %d with %d remaining, want about %d", i, reset, rem, want)
		}
	}
	if leases, _, _ := l.lease.Stats(); leases >= n/2 {
		t.Errorf("%d store calls for %d requests: not leasing in batches", leases, n)
	}
}

// TestRedisLeaseStoreDown kills Redis while a lease holds tokens: requests
// keep passing on them, then on_store_error applies (deny: 503).
func TestRedisLeaseStoreDown(t *testing.T) {
	srv, s := newRedis(t)
	srv.RequireOwned(t)
	l := build(t, "users", "limit: 1000000\nperiod: 1s\nsync: lease\non_store_error: deny\nstore_timeout: 100ms", s)
	for i := 0; i < 500; i++ {
		if v := newRequest("192.0.2.1").run(l); v != plugins.Next {
			t.Fatalf("request %d: verdict %v", i, v)
		}
	}
	time.Sleep(50 * time.Millisecond) // let the renewal ahead of need land
	srv.Kill()
	passed := 0
	for ; passed < 1000; passed++ {
		r := newRequest("192.0.2.1")
		if v := r.run(l); v != plugins.Next {
			if r.ctx.Response.StatusCode() != fasthttp.StatusServiceUnavailable {
				t.Fatalf("status %d once the lease ran out, want 503", r.ctx.Response.StatusCode())
			}
			break
		}
	}
	if passed == 0 || passed == 1000 {
		t.Fatalf("%d requests passed on the lease with Redis down, want the lease's tokens (1..64)", passed)
	}
	t.Logf("%d requests passed on the lease after Redis died", passed)
}

// TestRedisLeaseGivenBackOnClose: closing the plugin (what a reload does
// to the old generation, and shutdown to the last) gives its leases back:
// Redis keeps no lease of it, and the unused tokens are in the bucket.
func TestRedisLeaseGivenBackOnClose(t *testing.T) {
	srv, s := newRedis(t)
	l := build(t, "users", "limit: 1000000\nperiod: 1s\nburst: 1000000\nsync: lease\nstore_timeout: 2s", s)
	for i := 0; i < 300; i++ {
		if v := newRequest("192.0.2.1").run(l); v != plugins.Next {
			t.Fatalf("request %d: verdict %v", i, v)
		}
	}
	key := "gatewayd:rl:{users|ip:192.0.2.1}"
	field := "i:" + l.lease.Holder()
	if got, err := srv.Do("HEXISTS", key, field); err != nil || got != "1" {
		t.Fatalf("HEXISTS %s %s = %q %v, want a recorded lease", key, field, got, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := srv.Do("HEXISTS", key, field); err != nil || got != "0" {
		t.Fatalf("after Close: HEXISTS = %q %v, want the lease given back", got, err)
	}
	if _, releases, _ := l.lease.Stats(); releases == 0 {
		t.Fatal("no give-back on Close")
	}
}
