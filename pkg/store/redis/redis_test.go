package redis_test

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
	"github.com/gatewayd/gatewayd/pkg/store/storetest"
)

func connect(t *testing.T, addr string, cache bool) *redis.Store {
	t.Helper()
	s, err := redis.New(&config.Redis{Addrs: []string{addr}, ClientSideCache: &cache})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, func(t *testing.T) (store.Store, storetest.Clock) {
		return connect(t, srv.Addr(), true), storetest.RealClock{}
	})
}

func TestConformanceWithoutCache(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, func(t *testing.T) (store.Store, storetest.Clock) {
		return connect(t, srv.Addr(), false), storetest.RealClock{}
	})
}

// TestConformanceCluster runs the suite against a one-node Redis Cluster,
// through rueidis' cluster client: every command must stay in one slot.
func TestConformanceCluster(t *testing.T) {
	srv := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	if _, err := srv.Do("CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := srv.Do("CLUSTER", "INFO")
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster did not become ready: %q %v", info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	storetest.Run(t, func(t *testing.T) (store.Store, storetest.Clock) {
		return connect(t, srv.Addr(), true), storetest.RealClock{}
	})
}

func info(t *testing.T, srv *redistest.Server, section, field string) int64 {
	t.Helper()
	out, err := srv.Do("INFO", section)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\r\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
	}
	return 0
}

func TestBucketKeyAndTTL(t *testing.T) {
	srv := redistest.Start(t)
	s := connect(t, srv.Addr(), true)
	ctx := context.Background()
	id := []byte("login|ip:192.0.2.7")
	key := "gatewayd:rl:{login|ip:192.0.2.7}"
	if got := redis.RateKey(id); got != key {
		t.Fatalf("RateKey = %q, want %q", got, key)
	}
	r := store.Rate{Limit: 1, Period: time.Hour, Burst: 5}
	start := time.Now()
	res, err := s.Take(ctx, id, r, 2)
	if err != nil {
		t.Fatal(err)
	}
	if typ, _ := srv.Do("TYPE", key); typ != "hash" {
		t.Fatalf("TYPE %s = %q, want hash", key, typ)
	}
	out, err := srv.Do("PTTL", key)
	if err != nil {
		t.Fatal(err)
	}
	pttl, _ := strconv.ParseInt(out, 10, 64)
	since := time.Since(start)
	ttl := time.Duration(pttl) * time.Millisecond
	// The key lives until the bucket is full (2 tokens at 1/h), rounded up
	// to the ms: never shorter, so a half-full bucket is never reset early.
	if res.Reset != 2*time.Hour && (res.Reset > 2*time.Hour || res.Reset < 2*time.Hour-since) {
		t.Fatalf("Reset = %v, want 2h less at most %v", res.Reset, since)
	}
	if ttl > res.Reset+time.Millisecond || ttl < res.Reset-since-time.Millisecond {
		t.Fatalf("PTTL = %v, want the time until full, %v (less the %v since)", ttl, res.Reset, since)
	}
	t.Logf("Reset %v, PTTL %v", res.Reset, ttl)

	// A rejected take does not write: the TTL keeps running down.
	if res, _ := s.Take(ctx, id, r, 2); !res.Allowed || res.Remaining != 1 {
		t.Fatalf("second take = %+v, want allowed with 1 remaining", res)
	}
	out, _ = srv.Do("PTTL", key)
	p1, _ := strconv.ParseInt(out, 10, 64)
	for i := 0; i < 3; i++ {
		if res, _ := s.Take(ctx, id, r, 2); res.Allowed {
			t.Fatalf("take of 2 with 1 left = %+v, want rejected", res)
		}
	}
	out, _ = srv.Do("PTTL", key)
	if p2, _ := strconv.ParseInt(out, 10, 64); p2 > p1 || p2 < p1-1000 {
		t.Fatalf("PTTL after rejections = %d, want at most %d (unchanged)", p2, p1)
	}
}

func TestBucketExpiresWhenFull(t *testing.T) {
	srv := redistest.Start(t)
	s := connect(t, srv.Addr(), true)
	ctx := context.Background()
	id := []byte(t.Name())
	r := store.Rate{Limit: 100, Period: time.Second, Burst: 2}
	res, err := s.Take(ctx, id, r, 2)
	if err != nil || !res.Allowed {
		t.Fatalf("Take = %+v, %v", res, err)
	}
	if res.Reset <= 0 || res.Reset > 20*time.Millisecond {
		t.Fatalf("Reset = %v, want in (0, 20ms]", res.Reset)
	}
	time.Sleep(res.Reset + 30*time.Millisecond)
	if n, _ := srv.Do("EXISTS", redis.RateKey(id)); n != "0" {
		t.Fatalf("EXISTS after the bucket refilled = %s, want 0", n)
	}
	if res, _ = s.Take(ctx, id, r, 1); !res.Allowed || res.Remaining != 1 {
		t.Fatalf("Take on the expired bucket = %+v, want a full bucket", res)
	}
}

func TestRevocationKeys(t *testing.T) {
	srv := redistest.Start(t)
	s := connect(t, srv.Addr(), true)
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	if err := s.Revoke(ctx, "abc", until); err != nil {
		t.Fatal(err)
	}
	if v, _ := srv.Do("GET", "gatewayd:revoked:{abc}"); v != "1" {
		t.Fatalf("revoked key = %q, want 1", v)
	}
	out, _ := srv.Do("PTTL", "gatewayd:revoked:{abc}")
	if p, _ := strconv.ParseInt(out, 10, 64); p <= 0 || p > 60_001 {
		t.Fatalf("revoked key PTTL = %s, want ≈ 1 minute", out)
	}
	at := time.UnixMilli(1_800_000_000_123)
	if err := s.RevokeAll(ctx, "u1", at, time.Hour); err != nil {
		t.Fatal(err)
	}
	if v, _ := srv.Do("GET", "gatewayd:revoke-all:{u1}"); v != "1800000000123" {
		t.Fatalf("mark = %q, want unix ms 1800000000123", v)
	}
	out, _ = srv.Do("PTTL", "gatewayd:revoke-all:{u1}")
	if p, _ := strconv.ParseInt(out, 10, 64); p <= 3_590_000 || p > 3_600_000 {
		t.Fatalf("mark PTTL = %s, want ≈ 1 hour", out)
	}
}

// TestScriptFlush shows Take keeps working when the server has forgotten
// the script: EVALSHA gets NOSCRIPT, rueidis resends it once with EVAL, and
// later calls use EVALSHA again.
func TestScriptFlush(t *testing.T) {
	srv := redistest.Start(t)
	s := connect(t, srv.Addr(), true)
	ctx := context.Background()
	id := []byte(t.Name())
	r := store.Rate{Limit: 1, Period: time.Hour, Burst: 10}
	for want := int64(9); want >= 7; want-- {
		if res, err := s.Take(ctx, id, r, 1); err != nil || res.Remaining != want {
			t.Fatalf("Take = %+v, %v; want %d remaining", res, err, want)
		}
	}
	evalsha, eval := info(t, srv, "commandstats", "cmdstat_evalsha"), info(t, srv, "commandstats", "cmdstat_eval")
	if _, err := srv.Do("SCRIPT", "FLUSH"); err != nil {
		t.Fatal(err)
	}
	for want := int64(6); want >= 4; want-- {
		if res, err := s.Take(ctx, id, r, 1); err != nil || res.Remaining != want {
			t.Fatalf("Take after SCRIPT FLUSH = %+v, %v; want %d remaining", res, err, want)
		}
	}
	evalsha2, eval2 := info(t, srv, "commandstats", "cmdstat_evalsha"), info(t, srv, "commandstats", "cmdstat_eval")
	if eval2-eval != 1 || evalsha2-evalsha != 3 {
		t.Fatalf("after SCRIPT FLUSH: %d EVAL and %d EVALSHA calls, want 1 EVAL (the reload) and 3 EVALSHA",
			eval2-eval, evalsha2-evalsha)
	}
}

func TestErrorReplyIsNotUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	s := connect(t, srv.Addr(), true)
	id := []byte(t.Name())
	if _, err := srv.Do("SET", redis.RateKey(id), "not a hash"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Take(context.Background(), id, store.Rate{Limit: 1, Period: time.Second, Burst: 1}, 1)
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Take on a wrong-type key: %v, want an error that is not ErrUnavailable", err)
	}
	if _, err := srv.Do("SET", redis.RevokeAllKey("u"), "x"); err != nil {
		t.Fatal(err)
	}
	_, err = s.IsRevoked(context.Background(), nil, []byte("u"), 0, time.Second)
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("IsRevoked with a corrupt mark: %v, want an error that is not ErrUnavailable", err)
	}
}

// TestKilledServer checks that calls fail fast with ErrUnavailable while
// the server is down, and work again, on the same client, once a new
// (empty, script-less) server listens on the address.
func TestKilledServer(t *testing.T) {
	srv := redistest.Start(t)
	srv.RequireOwned(t)
	for _, cache := range []bool{true, false} {
		t.Run("cache="+strconv.FormatBool(cache), func(t *testing.T) {
			s := connect(t, srv.Addr(), cache)
			id := []byte(t.Name())
			r := store.Rate{Limit: 1, Period: time.Hour, Burst: 10}
			if _, err := s.Take(context.Background(), id, r, 3); err != nil {
				t.Fatal(err)
			}
			if _, err := s.IsRevoked(context.Background(), []byte("j"), []byte("u"), 0, time.Second); err != nil {
				t.Fatal(err)
			}
			srv.Kill()
			const deadline = 100 * time.Millisecond
			calls := []struct {
				name string
				call func(ctx context.Context) error
			}{
				{"Take", func(ctx context.Context) error { _, err := s.Take(ctx, id, r, 1); return err }},
				{"IsRevoked", func(ctx context.Context) error {
					_, err := s.IsRevoked(ctx, []byte("j2"), []byte("u2"), 0, time.Second)
					return err
				}},
				{"Revoke", func(ctx context.Context) error { return s.Revoke(ctx, "j", time.Now().Add(time.Hour)) }},
				{"RevokeAll", func(ctx context.Context) error { return s.RevokeAll(ctx, "u", time.Now(), time.Hour) }},
				{"Ping", s.Ping},
			}
			for round := 0; round < 3; round++ {
				for _, c := range calls {
					ctx, cancel := context.WithTimeout(context.Background(), deadline)
					start := time.Now()
					err := c.call(ctx)
					took := time.Since(start)
					cancel()
					if !errors.Is(err, store.ErrUnavailable) {
						t.Fatalf("%s with the server down: %v, want ErrUnavailable", c.name, err)
					}
					// A stall bound, not a speed assertion: the call must give
					// up around its deadline, not wait for a dial or retry loop.
					if took > deadline+time.Second {
						t.Fatalf("%s took %v with a %v deadline", c.name, took, deadline)
					}
					if round == 0 {
						t.Logf("%s: %v after %v", c.name, err, took)
					}
				}
			}
			srv.Restart()
			var res store.Result
			var err error
			until := time.Now().Add(10 * time.Second)
			for time.Now().Before(until) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				res, err = s.Take(ctx, id, r, 1)
				cancel()
				if err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("Take after restart: %v", err)
			}
			// The restarted server is empty: a fresh bucket.
			if !res.Allowed || res.Remaining != 9 {
				t.Fatalf("Take after restart = %+v, want a fresh bucket", res)
			}
			if ok, err := s.IsRevoked(context.Background(), []byte("j"), []byte("u"), 0, time.Second); err != nil || ok {
				t.Fatalf("IsRevoked after restart = %v, %v", ok, err)
			}
		})
	}
}

// TestCacheInvalidation revokes through one client and measures how soon
// another client, which holds a cached "not revoked", sees it. maxStale is
// long, so only server-side invalidation can make it that soon.
func TestCacheInvalidation(t *testing.T) {
	srv := redistest.Start(t)
	a := connect(t, srv.Addr(), true)
	b := connect(t, srv.Addr(), true)
	ctx := context.Background()
	const maxStale = 10 * time.Second
	check := func(jti, sub string, iat int64) bool {
		ok, err := a.IsRevoked(ctx, []byte(jti), []byte(sub), iat, maxStale)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	// Served from the cache: repeated checks send no GET to the server.
	check("warm", "warm-sub", 0)
	gets := info(t, srv, "commandstats", "cmdstat_get")
	for i := 0; i < 20; i++ {
		check("warm", "warm-sub", 0)
	}
	if got := info(t, srv, "commandstats", "cmdstat_get"); got != gets {
		t.Fatalf("%d GETs reached the server for cached checks, want 0", got-gets)
	}

	measureInvalidation(t, "invalidation delay", "", b, check, maxStale, false)
}

// measureInvalidation revokes 20 tokens (alternately by jti and by revoke-all)
// through b and waits until check, reading through another client's
// client-side cache, sees each one; it fails when one takes longer than
// maxStale/2 and logs the delays. With sameClient it also checks that b sees
// its own revocation on its very next call.
func measureInvalidation(t *testing.T, label, prefix string, b *redis.Store, check func(jti, sub string, iat int64) bool, maxStale time.Duration, sameClient bool) {
	t.Helper()
	ctx := context.Background()
	var delays []time.Duration
	for round := range 20 {
		jti, sub := prefix+"j"+strconv.Itoa(round), prefix+"u"+strconv.Itoa(round)
		iat := time.Now().UnixMilli() - 1
		if check(jti, sub, iat) {
			t.Fatal("revoked before Revoke")
		}
		var err error
		if round%2 == 0 {
			err = b.Revoke(ctx, jti, time.Now().Add(time.Hour))
		} else {
			err = b.RevokeAll(ctx, sub, time.Now(), time.Hour)
		}
		if err != nil {
			t.Fatal(err)
		}
		done := time.Now()
		for !check(jti, sub, iat) {
			if time.Since(done) > maxStale/2 {
				t.Fatalf("round %d: revocation through another client not seen after %v", round, time.Since(done))
			}
			time.Sleep(50 * time.Microsecond)
		}
		delays = append(delays, time.Since(done))
		if sameClient {
			if ok, err := b.IsRevoked(ctx, []byte(jti), []byte(sub), iat, maxStale); err != nil || !ok {
				t.Fatalf("round %d: the revoking client's next check = %v, %v; want revoked", round, ok, err)
			}
		}
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	t.Logf("%s over %d revocations: min %v, median %v, max %v",
		label, len(delays), delays[0], delays[len(delays)/2], delays[len(delays)-1])
}

// TestTakeClockSteppedBack: when the server clock is behind the bucket's
// last update, the script answers with its 4-value array, whose durations
// count from that later time; Take reads both reply shapes.
func TestTakeClockSteppedBack(t *testing.T) {
	srv := redistest.Start(t)
	s := connect(t, srv.Addr(), false)
	ctx := context.Background()
	id := []byte("clock|user:1")
	key := redis.RateKey(id)
	r := store.Rate{Limit: 1, Period: time.Second, Burst: 5}
	// 3 tokens, as of 10 s in the server's future.
	future := time.Now().Add(10 * time.Second).UnixMicro()
	if _, err := srv.Do("HSET", key, "l", "3000000", "t", strconv.FormatInt(future, 10)); err != nil {
		t.Fatal(err)
	}
	res, err := s.Take(ctx, id, r, 1)
	if err != nil {
		t.Fatal(err)
	}
	// 2 tokens left, full 3 s after the future update.
	if !res.Allowed || res.Remaining != 2 || res.Reset < 12*time.Second || res.Reset > 13*time.Second {
		t.Fatalf("Take = %+v, want allowed, 2 left, full in 12–13s", res)
	}
	res, err = s.Take(ctx, id, r, 3)
	if err != nil {
		t.Fatal(err)
	}
	if res.Allowed || res.Remaining != 2 || res.RetryAfter < 10*time.Second || res.RetryAfter > 11*time.Second {
		t.Fatalf("Take of 3 = %+v, want refused, 2 left, retry in 10–11s", res)
	}
	// Once the bucket's time has passed, the integer reply again.
	if _, err := srv.Do("HSET", key, "t", strconv.FormatInt(time.Now().Add(-time.Second).UnixMicro(), 10)); err != nil {
		t.Fatal(err)
	}
	res, err = s.Take(ctx, id, r, 1)
	// 2 tokens refilled by 1 over the second since, less the one taken.
	if err != nil || !res.Allowed || res.Remaining != 2 || res.Reset <= 2*time.Second || res.Reset > 3*time.Second {
		t.Fatalf("Take = %+v, %v, want allowed, 2 left, full in 2–3s", res, err)
	}
}

// TestLeaseUnbackedCarry: a holder that carries tokens its record does not
// back (its last renewal or give-back timed out on its side but ran on the
// server) still gets the tokens its request needs from a bucket that has
// them, instead of a refusal with a negative retry-after.
func TestLeaseUnbackedCarry(t *testing.T) {
	srv := redistest.Start(t)
	s := connect(t, srv.Addr(), false)
	r := store.Rate{Limit: 1000, Period: time.Second, Burst: 1000}
	ctx := context.Background()
	g, err := s.Lease(ctx, []byte("k"), store.LeaseRequest{
		Rate: r, Holder: "h", Seq: 7, NewSeq: 8, Carry: 5, Want: 0, Use: 1, TTL: 2 * time.Second,
	})
	if err != nil || !g.OK || g.Granted != 1 || g.Kept != 0 || g.Recorded != 0 || g.RetryAfter != 0 {
		t.Fatalf("Lease = %+v, %v; want OK, 1 granted and used, nothing kept", g, err)
	}
	// With a bucket too low for the request: refused, with a positive wait.
	for {
		res, err := s.Take(ctx, []byte("k"), r, 100)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Allowed {
			break
		}
	}
	g, err = s.Lease(ctx, []byte("k"), store.LeaseRequest{
		Rate: r, Holder: "h", Seq: 8, NewSeq: 9, Carry: 200, Want: 0, Use: 200, TTL: 2 * time.Second,
	})
	if err != nil || g.OK || g.RetryAfter <= 0 {
		t.Fatalf("Lease = %+v, %v; want refused with a positive retry-after", g, err)
	}
}
