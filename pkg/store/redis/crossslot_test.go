package redis_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
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

// keylessCommands are the commands a script may call without a key.
var keylessCommands = map[string]bool{"TIME": true}

var (
	callRe = regexp.MustCompile(`redis\.p?call\(\s*'([A-Za-z]+)'\s*(?:,\s*([^,)]+))?`)
	keysRe = regexp.MustCompile(`KEYS\[(\d+)\]`)
)

// TestScriptsTouchOneKey reads every Lua script of the package and checks
// that it names only KEYS[1] and that every Redis command it calls acts on
// KEYS[1] (or on no key): a script call is then a single key, so a single
// hash slot, and Redis Cluster can never answer CROSSSLOT or refuse an
// undeclared key.
func TestScriptsTouchOneKey(t *testing.T) {
	files, err := filepath.Glob("*.lua")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Lua scripts found: %v", err)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			code := stripLuaComments(string(src))
			for _, m := range keysRe.FindAllStringSubmatch(code, -1) {
				if m[1] != "1" {
					t.Errorf("uses KEYS[%s]: a script must take exactly one key", m[1])
				}
			}
			calls := callRe.FindAllStringSubmatch(code, -1)
			if len(calls) == 0 {
				t.Fatal("no redis.call found: the pattern no longer matches the scripts")
			}
			for _, m := range calls {
				cmd, arg := strings.ToUpper(m[1]), strings.TrimSpace(m[2])
				if keylessCommands[cmd] {
					continue
				}
				if arg != "KEYS[1]" {
					t.Errorf("redis.call('%s', %s): every command must act on KEYS[1]", m[1], arg)
				}
			}
		})
	}
}

func stripLuaComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestKeyLayoutHashTags checks that each key builder puts the whole id in
// the hash tag: two ids that differ land on independent slots (spread over
// the shards), and one id's keys of one kind always share its slot.
func TestKeyLayoutHashTags(t *testing.T) {
	tests := []struct {
		give    string
		wantTag string
	}{
		{redis.RateKey([]byte("users|user:42")), "users|user:42"},
		{redis.RateKey([]byte("login|ip:203.0.113.9")), "login|ip:203.0.113.9"},
		{redis.RevokedKey("0b7c1f0e-jti"), "0b7c1f0e-jti"},
		{redis.RevokeAllKey("3f1d-user-id"), "3f1d-user-id"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			if got, want := redistest.KeySlot(tt.give), redistest.KeySlot(tt.wantTag); got != want {
				t.Fatalf("slot %d, want %d (the slot of the hash tag %q)", got, want, tt.wantTag)
			}
		})
	}
}

// TestCluster runs the store against a real 3 masters + 3 replicas Redis
// Cluster: the conformance suite (with and without client-side caching),
// every auth store operation, the spread of keys over the masters, cache
// invalidation across clients, and last a master failover.
func TestCluster(t *testing.T) {
	skipShort(t)
	// Registered first, run last: after every store is closed.
	t.Cleanup(func() { waitDelayedCloses(t) })
	c := redistest.StartCluster(t, 3, 1)
	open := func(t *testing.T, cache bool) *redis.Store {
		t.Helper()
		s, err := redis.New(&config.Redis{Addrs: c.Addrs(), ClientSideCache: &cache})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if got := s.Topology(); got != "cluster" {
			t.Fatalf("Topology() = %q, want cluster", got)
		}
		return s
	}

	t.Run("KeySlotMatchesServer", func(t *testing.T) {
		node := c.Node(c.Addrs()[0])
		for _, k := range []string{
			"foo", "{user1000}.following", "a{}b", "{}{x}", "{a}{b}", "x{y",
			redis.RateKey([]byte("users|user:42")), redis.RevokedKey("j"), redis.RevokeAllKey("u"),
		} {
			out, err := node.Do("CLUSTER", "KEYSLOT", k)
			if err != nil {
				t.Fatal(err)
			}
			if want := strconv.Itoa(redistest.KeySlot(k)); out != want {
				t.Errorf("KeySlot(%q) = %s, CLUSTER KEYSLOT = %s", k, want, out)
			}
		}
	})
	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) (store.Store, storetest.Clock) {
			return open(t, true), storetest.RealClock{}
		})
	})
	t.Run("ConformanceWithoutCache", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) (store.Store, storetest.Clock) {
			return open(t, false), storetest.RealClock{}
		})
	})
	t.Run("AuthStore", func(t *testing.T) { testAuthOnCluster(t, redis.NewAuth(open(t, true))) })
	t.Run("KeysSpreadOverMasters", func(t *testing.T) { testSpread(t, c, open(t, true)) })
	t.Run("CacheInvalidation", func(t *testing.T) { testClusterInvalidation(t, c, open(t, true), open(t, true)) })
	t.Run("Failover", func(t *testing.T) { testClusterFailover(t, c, open(t, true)) })
}

// skipShort skips the tests that start a cluster or sentinels (several
// seconds each) under -short.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: starts a Redis Cluster or Sentinel set and fails a master over")
	}
}

// waitDelayedCloses waits until no rueidis goroutine is left once every
// store of the test is closed: a cluster client closes the connections it
// drops from its slot map (the seed replicas, a failed master) 5s after
// the refresh that dropped them, in case a command is still in flight on
// them, and a refresh it scheduled with a random delay may still be
// pending; the package's leak check runs right after the tests.
func waitDelayedCloses(t *testing.T) {
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 1<<20)
	quiet := 0
	for time.Now().Before(deadline) {
		n := runtime.Stack(buf, true)
		if bytes.Contains(buf[:n], []byte("github.com/redis/rueidis.")) {
			quiet = 0
		} else if quiet++; quiet == 2 {
			// Twice in a row: a closing connection's hook may start a
			// refresh just after the first look.
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Log("rueidis goroutines still running 10s after the stores were closed")
}

// testAuthOnCluster runs every operation of the auth store for many users,
// so their keys land on every shard; a key layout that put one call's keys
// on two slots would fail here with CROSSSLOT.
func testAuthOnCluster(t *testing.T, a *redis.Auth) {
	ctx := context.Background()
	for i := range 12 {
		id, email := "uid-"+strconv.Itoa(i), "user"+strconv.Itoa(i)+"@example.com"
		u := &store.User{ID: id, Email: email, Role: "user", PasswordHash: []byte("$2a$04$hash"), CreatedAt: time.UnixMilli(1_700_000_000_000)}
		if err := a.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser %s: %v", email, err)
		}
		if err := a.CreateUser(ctx, &store.User{ID: id + "-b", Email: email}); !errors.Is(err, store.ErrExists) {
			t.Fatalf("CreateUser with a taken email: %v, want ErrExists", err)
		}
		if got, err := a.UserByEmail(ctx, email); err != nil || got.ID != id {
			t.Fatalf("UserByEmail = %+v, %v", got, err)
		}
		if got, err := a.UserByID(ctx, id); err != nil || got.Email != email {
			t.Fatalf("UserByID = %+v, %v", got, err)
		}
		if err := a.SetPasswordHash(ctx, id, []byte("$2a$04$new")); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		exp := now.Add(time.Hour)
		if err := a.CreateSession(ctx, &store.Session{ID: "s1", UserID: id, TokenHash: []byte("h1"), ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
		if err := a.CreateSession(ctx, &store.Session{ID: "s2", UserID: id, TokenHash: []byte("k1"), ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
		rot := &store.Rotation{UserID: id, SessionID: "s1", OldHash: []byte("h1"), NewHash: []byte("h2"),
			Successor: []byte("blob"), Now: now, Grace: time.Minute, ExpiresAt: exp}
		if res, err := a.RotateSession(ctx, rot); err != nil || res.Outcome != store.Rotated {
			t.Fatalf("RotateSession = %+v, %v; want rotated", res, err)
		}
		if res, err := a.RotateSession(ctx, rot); err != nil || res.Outcome != store.RotateRetried || string(res.Successor) != "blob" {
			t.Fatalf("RotateSession retry = %+v, %v; want retried with the blob", res, err)
		}
		if err := a.DeleteSession(ctx, id, "s2"); err != nil {
			t.Fatal(err)
		}
		old := *rot
		old.OldHash, old.Now = []byte("h0"), now.Add(2*time.Minute)
		if res, err := a.RotateSession(ctx, &old); err != nil || res.Outcome != store.RotateReused {
			t.Fatalf("RotateSession with an old token = %+v, %v; want reused", res, err)
		}
		if err := a.DeleteUserSessions(ctx, id); err != nil {
			t.Fatal(err)
		}
		p := store.LockoutPolicy{MaxFailures: 2, Window: time.Minute}
		for i := range 2 {
			if d, err := a.ReserveFailure(ctx, email, p); err != nil || d != 0 {
				t.Fatalf("ReserveFailure %d = %v, %v", i+1, d, err)
			}
		}
		if d, err := a.ReserveFailure(ctx, email, p); err != nil || d <= 0 {
			t.Fatalf("ReserveFailure past the limit = %v, %v; want locked", d, err)
		}
		if d, err := a.LockedFor(ctx, email, p); err != nil || d <= 0 {
			t.Fatalf("LockedFor = %v, %v; want locked", d, err)
		}
		if err := a.ResetFailures(ctx, email); err != nil {
			t.Fatal(err)
		}
		if d, err := a.LockedFor(ctx, email, p); err != nil || d != 0 {
			t.Fatalf("LockedFor after reset = %v, %v", d, err)
		}
	}
}

// testSpread writes buckets, revocations and auth records for many ids and
// checks, node by node, that every key lives on the master serving its
// hash tag's slot and that every master holds some: different users are
// spread over the shards rather than pinned to one.
func testSpread(t *testing.T, c *redistest.Cluster, s *redis.Store) {
	ctx := context.Background()
	a := redis.NewAuth(s)
	r := store.Rate{Limit: 10, Period: time.Minute, Burst: 10}
	for i := range 30 {
		n := strconv.Itoa(i)
		if _, err := s.Take(ctx, []byte("spread|user:"+n), r, 1); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, "spread-jti-"+n, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeAll(ctx, "spread-user-"+n, time.Now(), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := a.CreateSession(ctx, &store.Session{ID: "s", UserID: "spread-user-" + n, TokenHash: []byte("h"), ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	masters, err := c.Masters()
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := c.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, m := range masters {
		keys := scanKeys(t, m, "gatewayd:*spread*")
		var self redistest.ClusterNode
		for _, n := range nodes {
			if n.Addr == m.Addr() {
				self = n
			}
		}
		for _, k := range keys {
			if !self.Serves(redistest.KeySlot(k)) {
				t.Errorf("%s holds %q of slot %d, which it does not serve", m.Addr(), k, redistest.KeySlot(k))
			}
			open, close := strings.IndexByte(k, '{'), strings.LastIndexByte(k, '}')
			if open < 0 || close != len(k)-1 || close-open < 2 {
				t.Errorf("key %q has no hash tag around its id", k)
			}
		}
		t.Logf("master %s (slots %v): %d keys", m.Addr(), self.Slots, len(keys))
		if len(keys) == 0 {
			t.Errorf("master %s holds none of the 120 keys: ids are not spread over the shards", m.Addr())
		}
		total += len(keys)
	}
	if total != 120 {
		t.Fatalf("found %d keys on the masters, want 120", total)
	}
}

func scanKeys(t *testing.T, s *redistest.Server, pattern string) []string {
	t.Helper()
	var keys []string
	cursor := "0"
	for {
		out, err := s.DoList("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
		if err != nil || len(out) == 0 {
			t.Fatalf("SCAN on %s: %v", s.Addr(), err)
		}
		cursor = out[0]
		keys = append(keys, out[1:]...)
		if cursor == "0" {
			return keys
		}
	}
}

// commandCalls sums the calls of a command over the masters.
func commandCalls(t *testing.T, c *redistest.Cluster, cmd string) int64 {
	t.Helper()
	masters, err := c.Masters()
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, m := range masters {
		sum += info(t, m, "commandstats", "cmdstat_"+cmd)
	}
	return sum
}

// testClusterInvalidation shows client-side caching working on the
// cluster: repeated checks are served from the cache, and a revocation
// written through another client reaches the cached one by server-side
// invalidation, long before maxStale.
func testClusterInvalidation(t *testing.T, c *redistest.Cluster, a, b *redis.Store) {
	ctx := context.Background()
	const maxStale = 10 * time.Second
	check := func(jti, sub string, iat int64) bool {
		t.Helper()
		ok, err := a.IsRevoked(ctx, []byte(jti), []byte(sub), iat, maxStale)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for i := range 6 {
		check("warm-"+strconv.Itoa(i), "warm-sub-"+strconv.Itoa(i), 0)
	}
	gets := commandCalls(t, c, "get")
	for range 20 {
		for i := range 6 {
			check("warm-"+strconv.Itoa(i), "warm-sub-"+strconv.Itoa(i), 0)
		}
	}
	if got := commandCalls(t, c, "get"); got != gets {
		t.Fatalf("%d GETs reached the masters for cached checks, want 0", got-gets)
	}

	measureInvalidation(t, "cluster invalidation delay", "inv-", b, check, maxStale, true)
}

// testClusterFailover kills the master serving a bucket and a revocation,
// and checks with the same client: calls on that shard fail with
// ErrUnavailable (never hang past their deadline) while calls on the other
// shards and Ping keep working; once the replica is promoted the bucket and the
// revocation, replicated before the kill, are served again.
func testClusterFailover(t *testing.T, c *redistest.Cluster, s *redis.Store) {
	ctx := context.Background()
	masters, err := c.Masters()
	if err != nil {
		t.Fatal(err)
	}
	victim := masters[0]
	nodes, _ := c.Nodes()
	var dead redistest.ClusterNode
	for _, n := range nodes {
		if n.Addr == victim.Addr() {
			dead = n
		}
	}
	// An id per role: on the victim's shard, and on another shard.
	var onVictim, elsewhere string
	for i := 0; onVictim == "" || elsewhere == ""; i++ {
		id := "fo-" + strconv.Itoa(i)
		if dead.Serves(redistest.KeySlot(redis.RateKey([]byte(id)))) {
			if onVictim == "" {
				onVictim = id
			}
		} else if elsewhere == "" {
			elsewhere = id
		}
	}
	var jti string
	for i := 0; jti == ""; i++ {
		if j := "fo-jti-" + strconv.Itoa(i); dead.Serves(redistest.KeySlot(redis.RevokedKey(j))) {
			jti = j
		}
	}
	r := store.Rate{Limit: 1, Period: time.Hour, Burst: 10}
	if _, err := s.Take(ctx, []byte(onVictim), r, 4); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, jti, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	waitReplicated(t, c, dead, redis.RevokedKey(jti))
	waitReplicated(t, c, dead, redis.RateKey([]byte(onVictim)))

	// deadline bounds a call on the failed shard; healthy shards get a
	// generous one, so that only a call held up by the failed shard (not a
	// busy machine) could miss it.
	const deadline, healthyDeadline = 100 * time.Millisecond, 2 * time.Second
	call := func(d time.Duration, fn func(ctx context.Context) error) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		start := time.Now()
		err := fn(ctx)
		return time.Since(start), err
	}
	takeOn := func(id string) func(ctx context.Context) error {
		return func(ctx context.Context) error { _, err := s.Take(ctx, []byte(id), r, 1); return err }
	}
	killed := time.Now()
	victim.Kill()
	var failures int
	recovered := time.Duration(0)
	for time.Since(killed) < 30*time.Second {
		took, err := call(deadline, takeOn(onVictim))
		if took > deadline+time.Second {
			t.Fatalf("Take on the failed shard took %v with a %v deadline", took, deadline)
		}
		if err == nil {
			recovered = time.Since(killed)
			break
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Take on the failed shard: %v, want ErrUnavailable", err)
		}
		failures++
		// The other shards keep serving during the gap, and the cluster
		// still answers a readiness ping.
		if took, err := call(healthyDeadline, takeOn(elsewhere)); err != nil {
			t.Fatalf("Take on a healthy shard %v after the kill: %v after %v", time.Since(killed), err, took)
		}
		if took, err := call(healthyDeadline, s.Ping); err != nil {
			t.Fatalf("Ping %v after the kill: %v after %v", time.Since(killed), err, took)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if recovered == 0 {
		t.Fatal("the failed shard's bucket was not served again within 30s")
	}
	if _, err := c.WaitFailover(dead, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("failover gap seen by the client: %v (%d failed calls, each ErrUnavailable within its %v deadline)", recovered, failures, deadline)
	// The promoted replica had the bucket and the revocation.
	res, err := s.Take(ctx, []byte(onVictim), r, 1)
	if err != nil || res.Remaining > 5 {
		t.Fatalf("Take after failover = %+v, %v; want the replicated bucket (at most 5 left)", res, err)
	}
	if ok, err := s.IsRevoked(ctx, []byte(jti), nil, 0, time.Second); err != nil || !ok {
		t.Fatalf("IsRevoked after failover = %v, %v; want the replicated revocation", ok, err)
	}
}

// waitReplicated waits until the replica of master holds key (SCAN is
// keyless, so a replica answers it without a MOVED redirect).
func waitReplicated(t *testing.T, c *redistest.Cluster, master redistest.ClusterNode, key string) {
	t.Helper()
	nodes, err := c.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.MasterID != master.ID {
			continue
		}
		replica := c.Node(n.Addr)
		deadline := time.Now().Add(5 * time.Second)
		for len(scanKeys(t, replica, key)) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s not replicated to %s after 5s", key, n.Addr)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return
	}
	t.Fatalf("no replica of %s", master.Addr)
}
