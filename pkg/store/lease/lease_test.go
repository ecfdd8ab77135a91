package lease

import (
	"context"
	"errors"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
	"github.com/gatewayd/gatewayd/pkg/store/storetest"
)

// connect returns the Redis store at addr behind the guard, as the gateway
// uses it.
func connect(t testing.TB, addr string) *store.Guarded {
	t.Helper()
	cfg := &config.Redis{Addrs: []string{addr}}
	rs, err := redis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := redis.Guard(rs, cfg)
	t.Cleanup(func() { _ = g.Close() })
	return g
}

func newLimiter(t testing.TB, st store.Store, opts Options) *Limiter {
	t.Helper()
	lr, ok := store.LeaserOf(st)
	if !ok {
		t.Fatal("the Redis store cannot lease")
	}
	l := New(lr, opts)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// leaseStore is a store whose Take leases.
type leaseStore struct {
	store.Store
	l *Limiter
}

func (s leaseStore) Take(ctx context.Context, key []byte, r store.Rate, cost int64) (store.Result, error) {
	return s.l.Take(ctx, key, r, cost)
}

// TestConformance runs the store suite with leases. The only tolerance is
// under-admission while a bucket refills, bounded by one batch: the suite's
// buckets are small or slow, so batches are small.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	// The suite's refilling bucket has a burst of 5, which bounds a batch.
	storetest.RunWith(t, storetest.Options{UnderAdmit: 5}, func(t *testing.T) (store.Store, storetest.Clock) {
		st := connect(t, srv.Addr())
		return leaseStore{st, newLimiter(t, st, Options{})}, storetest.RealClock{}
	})
}

// state returns key's local tokens and whether a renewal is in flight.
func (l *Limiter) state(key string) (tokens int64, renewing bool) {
	sh := &l.shards[maphash64(l, key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.m[key]; e != nil {
		return e.tokens, e.renewing || e.flight != nil
	}
	return 0, false
}

// settle waits until no renewal of key is in flight.
func (l *Limiter) settle(t *testing.T, key string) int64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, renewing := l.state(key)
		if !renewing {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatal("a renewal never finished")
		}
		time.Sleep(time.Millisecond)
	}
}

// drain takes single tokens with exact calls until the bucket rejects,
// returning how many it had.
func drain(t *testing.T, st store.Limiter, key []byte, r store.Rate) int64 {
	t.Helper()
	var n int64
	for {
		res, err := st.Take(context.Background(), key, r, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Allowed {
			return n
		}
		n++
	}
}

// slow is a bucket that barely refills during a test, with a sizing
// window long enough that batches grow to MaxBatch.
var (
	slow     = store.Rate{Limit: 100, Period: 100000 * time.Second, Burst: 100}
	slowOpts = Options{Window: 100000 * time.Second, MaxBatch: 20, TTL: 300 * time.Millisecond, Timeout: time.Second}
)

// TestBatchesGrowWithRate checks the sizing: one token at a time at first
// and for a slow limit, up to MaxBatch for a busy key.
func TestBatchesGrowWithRate(t *testing.T) {
	srv := redistest.Start(t)
	st := connect(t, srv.Addr())
	l := newLimiter(t, st, slowOpts)
	ctx := context.Background()
	key := []byte("grow")
	for i := 0; i < 40; i++ {
		if res, err := l.Take(ctx, key, slow, 1); err != nil || !res.Allowed {
			t.Fatalf("take %d: %+v %v", i, res, err)
		}
		l.settle(t, string(key))
	}
	held := l.settle(t, string(key))
	// Renewed to the batch each time it fell to a quarter of it.
	if held <= renewAt(20) || held > 20 {
		t.Fatalf("%d tokens held after 40 takes, want %d..20 (MaxBatch 20, renewed at %d)", held, renewAt(20)+1, renewAt(20))
	}
	// 40 admitted, held in the lease: the bucket has the rest.
	if n := drain(t, st, key, slow); n != 100-40-held {
		t.Fatalf("bucket holds %d, want %d (100 - 40 admitted - %d leased)", n, 100-40-held, held)
	}

	// A 5-a-minute limit is leased a token at a time: nothing is held.
	l = newLimiter(t, st, Options{})
	login := store.Rate{Limit: 5, Period: time.Minute, Burst: 5}
	lk := []byte("login")
	for i := 0; i < 5; i++ {
		if res, err := l.Take(ctx, lk, login, 1); err != nil || !res.Allowed || res.Remaining != int64(4-i) {
			t.Fatalf("login %d: %+v %v, want allowed with %d remaining", i, res, err, 4-i)
		}
		if n := l.settle(t, string(lk)); n != 0 {
			t.Fatalf("login limit: %d tokens held, want 0", n)
		}
	}
	if res, err := l.Take(ctx, lk, login, 1); err != nil || res.Allowed {
		t.Fatalf("sixth login: %+v %v, want rejected", res, err)
	}
}

// TestGiveBackAtExpiryAndClose checks that unused tokens return to the
// bucket when the lease runs out and when the limiter closes, and that the
// bucket never exceeds its burst.
func TestGiveBackAtExpiryAndClose(t *testing.T) {
	srv := redistest.Start(t)
	st := connect(t, srv.Addr())
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		close bool
	}{{"expiry", false}, {"close", true}} {
		t.Run(tt.name, func(t *testing.T) {
			l := New(must(store.LeaserOf(st)), slowOpts)
			defer l.Close()
			key := []byte("giveback-" + tt.name)
			for i := 0; i < 30; i++ {
				if _, err := l.Take(ctx, key, slow, 1); err != nil {
					t.Fatal(err)
				}
				l.settle(t, string(key))
			}
			if held := l.settle(t, string(key)); held == 0 {
				t.Fatal("no tokens held")
			}
			if tt.close {
				_ = l.Close()
			} else {
				deadline := time.Now().Add(5 * time.Second)
				for {
					if _, _, credited := l.Stats(); credited > 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("the lease was never given back")
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			if n := drain(t, st, key, slow); n != 70 {
				t.Fatalf("bucket holds %d after the give-back, want 70 (100 - 30 admitted)", n)
			}
		})
	}
}

func must[T any](v T, ok bool) T {
	if !ok {
		panic("not ok")
	}
	return v
}

// TestGiveBackNeverDoubleCounts gives a lease back twice (a retry after a
// lost answer) and after the store forgot it: tokens are credited once,
// and a full bucket stays at its burst.
func TestGiveBackNeverDoubleCounts(t *testing.T) {
	srv := redistest.Start(t)
	st := connect(t, srv.Addr())
	ctx := context.Background()
	key := []byte("twice")
	req := store.LeaseRequest{Rate: slow, Holder: "h1", NewSeq: 1, Want: 10, TTL: time.Minute}
	g, err := st.Lease(ctx, key, req)
	if err != nil || !g.OK || g.Granted != 10 || g.Remaining != 90 || g.Recorded != 10 {
		t.Fatalf("Lease = %+v %v, want 10 granted, 90 left", g, err)
	}
	rel := store.LeaseRequest{Rate: slow, Holder: "h1", Seq: 1, Carry: 10, TTL: time.Minute}
	for i, want := range []int64{10, 0, 0} {
		n, err := st.Release(ctx, key, rel)
		if err != nil || n != want {
			t.Fatalf("Release %d = %d %v, want %d credited", i, n, err, want)
		}
	}
	if n := drain(t, st, key, slow); n != 100 {
		t.Fatalf("bucket holds %d, want 100", n)
	}

	// Claiming more unused tokens than were leased credits only the lease.
	key = []byte("overclaim")
	if _, err := st.Lease(ctx, key, req); err != nil {
		t.Fatal(err)
	}
	rel.Carry = 100
	if n, err := st.Release(ctx, key, rel); err != nil || n != 10 {
		t.Fatalf("Release of 100 from a lease of 10 = %d %v, want 10", n, err)
	}
	if n := drain(t, st, key, slow); n != 100 {
		t.Fatalf("bucket holds %d, want 100 (never above the burst)", n)
	}

	// A give-back for an older lease number credits nothing.
	key = []byte("stale")
	if _, err := st.Lease(ctx, key, req); err != nil {
		t.Fatal(err)
	}
	renew := req
	renew.Seq, renew.NewSeq, renew.Carry, renew.Want = 1, 2, 10, 5
	if g, err := st.Lease(ctx, key, renew); err != nil || g.Kept != 10 || g.Granted != 5 || g.Recorded != 15 {
		t.Fatalf("renewal = %+v %v, want 10 kept and 5 granted", g, err)
	}
	rel.Seq, rel.Carry = 1, 15
	if n, err := st.Release(ctx, key, rel); err != nil || n != 0 {
		t.Fatalf("Release of lease 1 after renewal 2 = %d %v, want 0", n, err)
	}
	rel.Seq = 2
	if n, err := st.Release(ctx, key, rel); err != nil || n != 15 {
		t.Fatalf("Release of lease 2 = %d %v, want 15", n, err)
	}
	if n := drain(t, st, key, slow); n != 100 {
		t.Fatalf("bucket holds %d, want 100", n)
	}
}

// TestExactRespectsLeases checks that exact takes on a bucket never reach
// tokens leased out: bucket plus leases stay within the burst.
func TestExactRespectsLeases(t *testing.T) {
	srv := redistest.Start(t)
	st := connect(t, srv.Addr())
	ctx := context.Background()
	r := store.Rate{Limit: 1000, Period: time.Second, Burst: 50}
	key := []byte("mixed")
	g, err := st.Lease(ctx, key, store.LeaseRequest{Rate: r, Holder: "h1", NewSeq: 1, Want: 20, TTL: time.Minute})
	if err != nil || g.Granted != 20 {
		t.Fatalf("Lease = %+v %v", g, err)
	}
	// The bucket refills at 1000/s, but only up to 50 - 20 while the lease
	// lives.
	time.Sleep(100 * time.Millisecond)
	if res, err := st.Take(ctx, key, r, 1); err != nil || !res.Allowed || res.Remaining != 29 {
		t.Fatalf("exact take beside a lease of 20 = %+v %v, want 29 remaining of 50", res, err)
	}
}

// TestRedisKilledMidLease kills Redis while a lease holds tokens: they keep
// admitting, then Take fails (the plugin's on_store_error decides); after a
// restart (data lost) the lease's give-back credits nothing and the fresh
// bucket holds its burst, no more.
func TestRedisKilledMidLease(t *testing.T) {
	srv := redistest.Start(t)
	srv.RequireOwned(t)
	st := connect(t, srv.Addr())
	l := newLimiter(t, st, slowOpts)
	key := []byte("killed")
	for i := 0; i < 30; i++ {
		if _, err := l.Take(context.Background(), key, slow, 1); err != nil {
			t.Fatal(err)
		}
		l.settle(t, string(key))
	}
	held := l.settle(t, string(key))
	if held == 0 {
		t.Fatal("no tokens held")
	}
	srv.Kill()
	call := func() (store.Result, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		return l.Take(ctx, key, slow, 1)
	}
	var admitted int64
	var err error
	for i := 0; i < 100; i++ {
		var res store.Result
		res, err = call()
		if err != nil {
			break
		}
		if !res.Allowed {
			t.Fatalf("rejected with local tokens: %+v", res)
		}
		admitted++
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("after the local tokens: %v, want a store error", err)
	}
	// Renewals ahead of need may have landed before the kill.
	if admitted < held {
		t.Fatalf("admitted %d from the lease with Redis down, want at least the %d held", admitted, held)
	}
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := st.Take(context.Background(), []byte("probe"), slow, 1); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Redis did not come back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * slowOpts.TTL)
	_ = l.Close()
	if n := drain(t, st, key, slow); n != 100 {
		t.Fatalf("fresh bucket holds %d after the restart, want its burst of 100", n)
	}
}

// TestPausedRedisGiveBackCountsOnce pauses Redis while a lease runs out:
// the give-back times out (and may still run when Redis resumes), the
// limiter retries it, and the tokens are credited exactly once.
func TestPausedRedisGiveBackCountsOnce(t *testing.T) {
	srv := redistest.Start(t)
	srv.RequireOwned(t)
	st := connect(t, srv.Addr())
	// The pause outlasts the lease (TTL) but not the store's record of it
	// (2 × TTL): the give-back is still due when Redis resumes.
	opts := slowOpts
	opts.TTL = time.Second
	opts.Timeout = 100 * time.Millisecond
	l := newLimiter(t, st, opts)
	key := []byte("paused")
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		if _, err := l.Take(ctx, key, slow, 1); err != nil {
			t.Fatal(err)
		}
		l.settle(t, string(key))
	}
	held := l.settle(t, string(key))
	// Spend all but 2 locally, so no renewal is due.
	b := l.batch(l.entry(string(key)), 1)
	var used int64
	for n := held; n > 2 && n-1 > renewAt(b); n-- {
		if res, err := l.Take(ctx, key, slow, 1); err != nil || !res.Allowed {
			t.Fatalf("local take: %+v %v", res, err)
		}
		used++
	}
	left := l.settle(t, string(key))
	srv.Pause()
	// The lease runs out and its give-back times out, more than once.
	time.Sleep(opts.TTL + 400*time.Millisecond)
	srv.Resume()
	// Wait until a give-back is answered: the retry, or the first
	// attempt if it is the one that ran after the pause.
	deadline := time.Now().Add(10 * time.Second)
	for l.pending(string(key)) {
		if time.Now().After(deadline) {
			t.Fatal("the give-back was never answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = l.Close()
	admitted := 30 + used
	n := drain(t, st, key, slow)
	// Exactly once: 100 - admitted (the give-back of `left` credited once;
	// slow refills less than a token during the test).
	if n != 100-admitted {
		t.Fatalf("bucket holds %d after %d admitted and %d given back during a pause, want %d",
			n, admitted, left, 100-admitted)
	}
}

// pending reports whether key has a give-back to retry.
func (l *Limiter) pending(key string) bool {
	sh := &l.shards[maphash64(l, key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[key]
	return e != nil && e.pendingSeq != 0
}

// entry returns key's entry.
func (l *Limiter) entry(key string) *entry {
	sh := &l.shards[maphash64(l, key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.m[key]
}

// TestThreeInstances runs three limiters (three gateways' lease state) on
// one bucket in one Redis under saturating load: the admitted count stays
// within an exact bucket's bound (burst + limit × elapsed) and at most
// three max batches below it.
func TestThreeInstances(t *testing.T) {
	srv := redistest.Start(t)
	const instances = 3
	r := store.Rate{Limit: 100, Period: time.Second, Burst: 100}
	opts := Options{MaxBatch: 10}
	ls := make([]*Limiter, instances)
	for i := range ls {
		ls[i] = newLimiter(t, connect(t, srv.Addr()), opts)
	}
	key := []byte("shared")
	var admitted atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	start := time.Now()
	for i := range ls {
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(l *Limiter) {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					res, err := l.Take(ctx, key, r, 1)
					cancel()
					if err == nil && res.Allowed {
						admitted.Add(1)
					} else if err == nil {
						time.Sleep(time.Millisecond)
					}
				}
			}(ls[i])
		}
	}
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	got := admitted.Load()
	exact := r.Burst + int64(elapsed.Seconds()*float64(r.Limit))
	hi := exact + 1
	lo := r.Burst + int64((elapsed-200*time.Millisecond).Seconds()*float64(r.Limit)) - instances*opts.MaxBatch
	t.Logf("admitted %d in %v; exact bucket %d; bounds [%d, %d]", got, elapsed, exact, lo, hi)
	if got > hi {
		t.Fatalf("admitted %d, more than an exact bucket's %d", got, hi)
	}
	if got < lo {
		t.Fatalf("admitted %d, below %d (exact minus %d instances × %d)", got, lo, instances, opts.MaxBatch)
	}
}

// maphash64 is the shard index of key.
func maphash64(l *Limiter, key string) uint64 {
	return maphash.String(l.seed, key) % numShards
}

// TestConformanceCluster runs the suite with leases on a one-node Redis
// Cluster, through rueidis' cluster client: the lease script stays in the
// bucket's slot.
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
	storetest.RunWith(t, storetest.Options{UnderAdmit: 5}, func(t *testing.T) (store.Store, storetest.Clock) {
		st := connect(t, srv.Addr())
		return leaseStore{st, newLimiter(t, st, Options{})}, storetest.RealClock{}
	})
}

// TestKeysAreBounded: with many keys the lease state stays within MaxKeys,
// least recently used out, and an evicted key's lease goes back.
func TestKeysAreBounded(t *testing.T) {
	srv := redistest.Start(t)
	st := connect(t, srv.Addr())
	opts := slowOpts
	opts.MaxKeys = numShards // one key per shard
	opts.TTL = time.Hour     // only eviction and Close give back
	l := New(must(store.LeaserOf(st)), opts)
	ctx := context.Background()
	const keys = 200
	for k := 0; k < keys; k++ {
		key := []byte("many-" + strconv.Itoa(k))
		for i := 0; i < 6; i++ {
			if _, err := l.Take(ctx, key, slow, 1); err != nil {
				t.Fatal(err)
			}
			l.settle(t, string(key))
		}
	}
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	if n > opts.MaxKeys {
		t.Fatalf("%d keys with lease state, want at most MaxKeys %d", n, opts.MaxKeys)
	}
	_ = l.Close()
	for k := 0; k < keys; k++ {
		key := []byte("many-" + strconv.Itoa(k))
		if got := drain(t, st, key, slow); got != 100-6 {
			t.Fatalf("key %d: bucket holds %d after eviction or Close, want %d (every unused token back)", k, got, 100-6)
		}
	}
}

// TestEvictionFollowsUse: a full shard evicts its least recently used key,
// use being recorded at most every touchEvery per key.
func TestEvictionFollowsUse(t *testing.T) {
	srv := redistest.Start(t)
	st := connect(t, srv.Addr())
	opts := slowOpts
	opts.MaxKeys = 2 * numShards // two keys per shard
	l := newLimiter(t, st, opts)
	ctx := context.Background()
	// Three keys of one shard.
	var keys []string
	want := maphash.String(l.seed, "k0") % numShards
	for i := 0; len(keys) < 3; i++ {
		if k := "k" + strconv.Itoa(i); maphash.String(l.seed, k)%numShards == want {
			keys = append(keys, k)
		}
	}
	a, b, c := keys[0], keys[1], keys[2]
	take := func(k string) {
		t.Helper()
		if _, err := l.Take(ctx, []byte(k), slow, 1); err != nil {
			t.Fatal(err)
		}
		l.settle(t, k)
	}
	has := func(k string) bool {
		sh := &l.shards[want]
		sh.mu.Lock()
		defer sh.mu.Unlock()
		return sh.m[k] != nil
	}
	take(a)
	take(b)
	// a was used again, but within touchEvery of its insertion: the use is
	// not recorded, and a is still the least recently used.
	take(a)
	take(c)
	if has(a) || !has(b) || !has(c) {
		t.Fatalf("a used again at once: a %v b %v c %v, want a evicted", has(a), has(b), has(c))
	}
	// Now b's use of a second ago is recorded when it is used again.
	sh := &l.shards[want]
	sh.mu.Lock()
	sh.m[b].moved -= int64(2 * touchEvery)
	sh.mu.Unlock()
	take(b)
	take(a)
	if !has(a) || !has(b) || has(c) {
		t.Fatalf("b used again after touchEvery: a %v b %v c %v, want c evicted", has(a), has(b), has(c))
	}
}
