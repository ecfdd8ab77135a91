package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
)

// cachedRevoked asks s from memory alone.
func cachedRevoked(s store.CachedRevocations, jti, sub string, iat int64, maxStale time.Duration) (revoked, ok bool) {
	return s.CachedRevoked([]byte(jti), []byte(sub), iat, maxStale)
}

// TestCachedRevokedAnswers checks what the in-memory answers hold: nothing
// before a read, then the read's answer for the jti and the subject's mark,
// compared with each token's iat.
func TestCachedRevokedAnswers(t *testing.T) {
	srv := redistest.Start(t)
	s := connect(t, srv.Addr(), true)
	ctx := context.Background()
	const maxStale = time.Minute

	if _, ok := cachedRevoked(s, "j1", "u1", 1, maxStale); ok {
		t.Fatal("answered before any read")
	}
	mark := time.Now().Add(-time.Minute)
	if err := s.RevokeAll(ctx, "u1", mark, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, "j2", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		jti, sub  string
		iat       int64
		wantRevok bool
	}{
		{name: "neither", jti: "j1", sub: "u2", iat: 1, wantRevok: false},
		{name: "issued before the mark", jti: "j1", sub: "u1", iat: mark.UnixMilli() - 1, wantRevok: true},
		{name: "issued at the mark", jti: "j3", sub: "u1", iat: mark.UnixMilli(), wantRevok: true},
		{name: "issued after the mark", jti: "j4", sub: "u1", iat: mark.UnixMilli() + 1, wantRevok: false},
		{name: "revoked jti", jti: "j2", sub: "u2", iat: time.Now().UnixMilli(), wantRevok: true},
		{name: "jti only", jti: "j5", iat: 1, wantRevok: false},
		{name: "subject only", sub: "u1", iat: 1, wantRevok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.IsRevoked(ctx, []byte(tt.jti), []byte(tt.sub), tt.iat, maxStale)
			if err != nil || got != tt.wantRevok {
				t.Fatalf("IsRevoked = %v, %v; want %v", got, err, tt.wantRevok)
			}
			got, ok := cachedRevoked(s, tt.jti, tt.sub, tt.iat, maxStale)
			if !ok || got != tt.wantRevok {
				t.Fatalf("CachedRevoked after the read = %v, %v; want %v, true", got, ok, tt.wantRevok)
			}
		})
	}
	// The mark is kept, not the verdict: another token of u1 is compared
	// with it from memory.
	if got, ok := cachedRevoked(s, "", "u1", mark.UnixMilli()+5, maxStale); !ok || got {
		t.Fatalf("later token of u1 = %v, %v; want false, true", got, ok)
	}
	// A revoked jti decides alone; an unknown subject is needed otherwise.
	if got, ok := cachedRevoked(s, "j2", "unknown", 1, maxStale); !ok || !got {
		t.Fatalf("revoked jti, unknown subject = %v, %v; want true, true", got, ok)
	}
	if _, ok := cachedRevoked(s, "j1", "unknown", 1, maxStale); ok {
		t.Fatal("answered for a subject never read")
	}
}

// TestCachedRevokedOff: without client-side caching, or with maxStale 0,
// nothing is answered from memory.
func TestCachedRevokedOff(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	off := connect(t, srv.Addr(), false)
	on := connect(t, srv.Addr(), true)
	for _, s := range []*redis.Store{off, on} {
		if _, err := s.IsRevoked(ctx, []byte("j"), []byte("u"), 1, 0); err != nil {
			t.Fatal(err)
		}
		if _, ok := cachedRevoked(s, "j", "u", 1, time.Minute); ok {
			t.Fatal("answered from memory after an uncached read")
		}
	}
	if _, err := off.IsRevoked(ctx, []byte("j"), []byte("u"), 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, ok := cachedRevoked(off, "j", "u", 1, time.Minute); ok {
		t.Fatal("answered from memory with client_side_cache: false")
	}
}

// TestCachedRevokedMaxStale: an answer is served at most maxStale (the
// caller's) after its read began.
func TestCachedRevokedMaxStale(t *testing.T) {
	srv := redistest.Start(t)
	s := connect(t, srv.Addr(), true)
	const maxStale = 300 * time.Millisecond
	start := time.Now()
	if _, err := s.IsRevoked(context.Background(), []byte("j"), []byte("u"), 1, maxStale); err != nil {
		t.Fatal(err)
	}
	if _, ok := cachedRevoked(s, "j", "u", 1, maxStale); !ok && time.Since(start) < maxStale {
		t.Fatal("not answered within maxStale")
	}
	time.Sleep(100 * time.Millisecond)
	if _, ok := cachedRevoked(s, "j", "u", 1, 50*time.Millisecond); ok {
		t.Fatal("answered with an entry older than the caller's maxStale")
	}
	time.Sleep(maxStale - time.Since(start) + 10*time.Millisecond)
	if _, ok := cachedRevoked(s, "j", "u", 1, maxStale); ok {
		t.Fatal("answered after maxStale")
	}
}

// TestCachedRevokedInvalidated: a revocation by another client reaches the
// answers through the server's invalidation, one by this client at its
// next call (the fence), and a dropped connection clears them.
func TestCachedRevokedInvalidated(t *testing.T) {
	srv := redistest.Start(t)
	a := connect(t, srv.Addr(), true)
	b := connect(t, srv.Addr(), true)
	ctx := context.Background()
	const maxStale = time.Minute
	read := func(jti, sub string) {
		t.Helper()
		if got, err := a.IsRevoked(ctx, []byte(jti), []byte(sub), 1, maxStale); err != nil || got {
			t.Fatalf("IsRevoked = %v, %v; want false", got, err)
		}
		if _, ok := cachedRevoked(a, jti, sub, 1, maxStale); !ok {
			t.Fatal("read not kept")
		}
	}
	waitGone := func(what, jti, sub string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, ok := cachedRevoked(a, jti, sub, 1, maxStale)
			if !ok || got {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still answered not revoked from memory", what)
			}
			time.Sleep(time.Millisecond)
		}
	}

	read("j1", "u1")
	if err := b.Revoke(ctx, "j1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	waitGone("revoke through another client", "j1", "u1")

	read("j2", "u2")
	if err := b.RevokeAll(ctx, "u2", time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	waitGone("revoke-all through another client", "j2", "u2")

	read("j3", "u3")
	if err := a.Revoke(ctx, "j3", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, ok := cachedRevoked(a, "j3", "u3", 1, maxStale); ok && !got {
		t.Fatal("own revocation answered not revoked from memory after Revoke returned")
	}

	read("j4", "u4")
	if _, err := srv.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
		t.Fatal(err)
	}
	waitGone("killed connection", "j4", "u4")
}

// TestGuardedCachedRevoked: the guard answers from the store's memory
// while its breaker is closed.
func TestGuardedCachedRevoked(t *testing.T) {
	srv := redistest.Start(t)
	cache := true
	cfg := &config.Redis{Addrs: []string{srv.Addr()}, ClientSideCache: &cache}
	s, err := redis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := redis.Guard(s, cfg)
	t.Cleanup(func() { _ = g.Close() })
	if _, err := g.IsRevoked(context.Background(), []byte("j"), []byte("u"), 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, ok := cachedRevoked(g, "j", "u", 1, time.Minute); !ok || got {
		t.Fatalf("guarded CachedRevoked = %v, %v; want false, true", got, ok)
	}
	// An expired context does not matter to an answer from memory.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := g.IsRevoked(ctx, []byte("j"), []byte("u"), 1, time.Minute); err != nil || got {
		t.Fatalf("guarded IsRevoked from memory = %v, %v; want false, nil", got, err)
	}
}

// TestRereadTrackedKeys: past maxStale, keys that were absent are read
// again with plain GETs (no MULTI/PTTL through the client-side cache), the
// server still invalidates them, and a present key is read through the
// cache again.
func TestRereadTrackedKeys(t *testing.T) {
	srv := redistest.Start(t)
	a := connect(t, srv.Addr(), true)
	b := connect(t, srv.Addr(), true)
	ctx := context.Background()
	const maxStale = 100 * time.Millisecond
	check := func(want bool) {
		t.Helper()
		if got, err := a.IsRevoked(ctx, []byte("j"), []byte("u"), 1, maxStale); err != nil || got != want {
			t.Fatalf("IsRevoked = %v, %v; want %v", got, err, want)
		}
	}
	check(false)
	multis, gets := info(t, srv, "commandstats", "cmdstat_multi"), info(t, srv, "commandstats", "cmdstat_get")
	time.Sleep(maxStale + 20*time.Millisecond)
	if _, ok := cachedRevoked(a, "j", "u", 1, maxStale); ok {
		t.Fatal("answered from memory past maxStale")
	}
	check(false)
	if m, g := info(t, srv, "commandstats", "cmdstat_multi"), info(t, srv, "commandstats", "cmdstat_get"); m != multis || g != gets+2 {
		t.Fatalf("re-read: %d MULTI, %d GET; want 0 and 2 (plain GETs)", m-multis, g-gets)
	}
	if got, ok := cachedRevoked(a, "j", "u", 1, maxStale); !ok || got {
		t.Fatalf("after the re-read: %v, %v; want answered, not revoked", got, ok)
	}

	// The server still tracks the keys for a: another client's revocation
	// is invalidated at once, not at maxStale.
	if err := b.Revoke(ctx, "j", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(maxStale / 2)
	for {
		if got, ok := cachedRevoked(a, "j", "u", 1, maxStale); !ok || got {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the revocation was not invalidated after a plain re-read")
		}
		time.Sleep(time.Millisecond)
	}
	multis = info(t, srv, "commandstats", "cmdstat_multi")
	check(true)
	time.Sleep(maxStale + 20*time.Millisecond)
	check(true)
	// Each read through the cache is one MULTI per key.
	if m := info(t, srv, "commandstats", "cmdstat_multi"); m != multis+4 {
		t.Fatalf("%d MULTI, want 4: two reads of two keys through the cache (a present key is not read plainly)", m-multis)
	}
}

// TestAnswersOutliveEvictedCacheEntries: with the default cache_size, each
// connection's client-side cache holds far fewer entries than 1500 users'
// revocation keys, yet every check is answered from memory after its
// first read, without a command to Redis, and a revocation of a key long
// evicted from the client library's cache still reaches the answers at
// once: the server tracks the key until it changes, whatever the client
// evicts.
func TestAnswersOutliveEvictedCacheEntries(t *testing.T) {
	srv := redistest.Start(t)
	a := connect(t, srv.Addr(), true)
	b := connect(t, srv.Addr(), true)
	ctx := context.Background()
	const users, maxStale = 1500, time.Minute
	id := func(p string, i int) []byte { return fmt.Appendf(nil, "%s-%d", p, i) }
	for i := range users {
		if got, err := a.IsRevoked(ctx, id("jti", i), id("user", i), 1, maxStale); err != nil || got {
			t.Fatalf("IsRevoked(%d) = %v, %v", i, got, err)
		}
	}
	gets := info(t, srv, "commandstats", "cmdstat_get")
	if gets < 2*users {
		t.Fatalf("%d GETs for the first reads of %d users' two keys", gets, users)
	}
	for i := range users {
		if got, ok := a.CachedRevoked(id("jti", i), id("user", i), 1, maxStale); !ok || got {
			t.Fatalf("CachedRevoked(%d) = %v, %v; want answered, not revoked", i, got, ok)
		}
		if got, err := a.IsRevoked(ctx, id("jti", i), id("user", i), 1, maxStale); err != nil || got {
			t.Fatalf("IsRevoked(%d) again = %v, %v", i, got, err)
		}
	}
	if n := info(t, srv, "commandstats", "cmdstat_get") - gets; n != 0 {
		t.Errorf("%d GETs for %d repeated checks, want none", n, users)
	}
	if err := b.Revoke(ctx, "jti-0", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, ok := a.CachedRevoked(id("jti", 0), id("user", 0), 1, maxStale); !ok || got {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the revocation of an evicted key did not reach the answers")
		}
		time.Sleep(time.Millisecond)
	}
	if got, err := a.IsRevoked(ctx, id("jti", 0), id("user", 0), 1, maxStale); err != nil || !got {
		t.Fatalf("IsRevoked after the revocation = %v, %v; want revoked", got, err)
	}
}
