// Package memory is the in-process implementation of the store interfaces,
// for a gateway running without Redis. State is sharded by key hash (each
// shard a mutex and a map) so concurrent requests rarely contend, and a
// janitor goroutine drops buckets that have refilled and revocations that
// have expired, so memory stays bounded by the keys active within one
// bucket period.
//
// Token buckets use the same integer arithmetic as the Redis store: a token
// is Period (in microseconds) units and Limit units are added per
// microsecond, so refill is exact and never drifts.
package memory

import (
	"context"
	"errors"
	"hash/maphash"
	"maps"
	"sync"
	"time"
	"unsafe"

	"github.com/gatewayd/gatewayd/pkg/store"
)

// MaxUnits bounds Burst × Period in microseconds (token-microseconds), the
// largest bucket the integer arithmetic supports. The Redis store has the
// same bound (its script computes in Lua doubles, exact below 2^53).
const MaxUnits = 1 << 52

// ErrInvalidRate is returned by Take for a rate or cost outside what a
// bucket can represent: Limit, Burst and cost at least 1, Period at least
// one microsecond, cost at most Burst and Burst × Period at most MaxUnits.
var ErrInvalidRate = errors.New("memory: invalid rate or cost")

// errTTL is returned by RevokeAll for a ttl that is not positive.
var errTTL = errors.New("memory: revoke-all ttl must be positive")

const (
	defaultShards = 256
	maxShards     = 1 << 16
	// sweepShards is how many shards of each kind the janitor sweeps per
	// tick, so no tick holds many locks in a row.
	sweepShards          = 16
	defaultSweepInterval = 250 * time.Millisecond
	// cacheLine pads shards so neighbouring locks do not share a line.
	cacheLine = 64
	// shrinkMin is the map size from which a sweep that leaves a quarter
	// or less of the entries rebuilds the map: Go maps never shrink, so a
	// burst of keys would otherwise keep its memory for good.
	shrinkMin = 1024
)

// Option configures a Store.
type Option func(*options)

type options struct {
	now           func() time.Time
	shards        int
	sweepInterval time.Duration
}

// WithClock makes the store read time from now instead of time.Now, so
// tests can move time by hand.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithShards sets the number of shards of each kind (rounded up to a power
// of two, 1 to 65536; default 256).
func WithShards(n int) Option {
	return func(o *options) { o.shards = n }
}

// WithSweepInterval sets how often the janitor wakes up (default 250ms). Each
// tick sweeps 16 shards of each kind, so with the default 256 shards every
// entry is looked at within 16 ticks (4 s).
func WithSweepInterval(d time.Duration) Option {
	return func(o *options) { o.sweepInterval = d }
}

// Store is an in-process store.Store. The zero value is not usable; call New.
type Store struct {
	now     func() time.Time
	seed    maphash.Seed
	mask    uint64
	buckets []bucketShard
	revs    []revShard

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var (
	_ store.Store = (*Store)(nil)
	_ store.Local = (*Store)(nil)
)

// bucket is one token bucket: level units at time ts (unix µs). full is the
// time at which the bucket is full again, when the janitor may drop it.
type bucket struct {
	level int64
	ts    int64
	full  int64
}

type bucketShard struct {
	bucketData
	_ [cacheLine - unsafe.Sizeof(bucketData{})%cacheLine]byte
}

type bucketData struct {
	mu   sync.Mutex
	m    map[string]*bucket
	peak int // the largest len(m) a sweep saw since m was made
}

// mark is a subject's revoke-all mark (unix ms) and when it expires (unix µs).
type mark struct {
	at     int64
	expire int64
}

type revShard struct {
	revData
	_ [cacheLine - unsafe.Sizeof(revData{})%cacheLine]byte
}

type revData struct {
	mu          sync.RWMutex
	revoked     map[string]int64 // jti -> expiry, unix µs
	marks       map[string]mark
	revokedPeak int
	marksPeak   int
}

// New returns a store and starts its janitor; Close stops it.
func New(opts ...Option) *Store {
	o := options{now: time.Now, shards: defaultShards, sweepInterval: defaultSweepInterval}
	for _, opt := range opts {
		opt(&o)
	}
	n := 1
	for n < o.shards && n < maxShards {
		n <<= 1
	}
	if o.sweepInterval <= 0 {
		o.sweepInterval = defaultSweepInterval
	}
	s := &Store{
		now:     o.now,
		seed:    maphash.MakeSeed(),
		mask:    uint64(n - 1),
		buckets: make([]bucketShard, n),
		revs:    make([]revShard, n),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	for i := range s.buckets {
		s.buckets[i].m = make(map[string]*bucket)
		s.revs[i].revoked = make(map[string]int64)
		s.revs[i].marks = make(map[string]mark)
	}
	go s.janitor(o.sweepInterval)
	return s
}

// Local marks the store as in-process: its calls never block on I/O.
func (s *Store) Local() {}

func (s *Store) shard(key []byte) uint64 { return maphash.Bytes(s.seed, key) & s.mask }

func (s *Store) shardString(key string) uint64 { return maphash.String(s.seed, key) & s.mask }

// units converts a rate and cost to the bucket's integer units: a token is
// unit units, rate units are added per microsecond, the bucket holds capU.
func units(r store.Rate, cost int64) (capU, costU, unit, rate int64, ok bool) {
	unit = r.Period.Microseconds()
	if r.Limit < 1 || r.Burst < 1 || unit < 1 || cost < 1 || cost > r.Burst || r.Burst > MaxUnits/unit {
		return 0, 0, 0, 0, false
	}
	return r.Burst * unit, cost * unit, unit, r.Limit, true
}

// ceilDiv returns ⌈a/b⌉ for a ≥ 0, b > 0.
func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// Take refills the bucket at key and takes cost tokens if it holds them.
// ctx is not used: the call never blocks on I/O.
func (s *Store) Take(_ context.Context, key []byte, r store.Rate, cost int64) (store.Result, error) {
	capU, costU, unit, rate, ok := units(r, cost)
	if !ok {
		return store.Result{}, ErrInvalidRate
	}
	now := s.now().UnixMicro()
	sh := &s.buckets[s.shard(key)]
	sh.mu.Lock()
	b := sh.m[string(key)]
	if b == nil {
		b = &bucket{level: capU, ts: now}
		sh.m[string(key)] = b
	}
	level := min(b.level, capU)
	if now > b.ts {
		if missing := capU - level; missing > 0 {
			if now-b.ts >= ceilDiv(missing, rate) {
				level = capU
			} else {
				level += (now - b.ts) * rate
			}
		}
		b.ts = now
	}
	// b.ts is later than now only when the clock stepped back; times are
	// then counted from b.ts.
	lag := b.ts - now
	var res store.Result
	if level >= costU {
		level -= costU
		res.Allowed = true
	} else {
		res.RetryAfter = time.Duration(ceilDiv(costU-level, rate)+lag) * time.Microsecond
	}
	reset := ceilDiv(capU-level, rate)
	b.level = level
	b.full = b.ts + reset
	sh.mu.Unlock()
	res.Remaining = level / unit
	res.Reset = time.Duration(reset+lag) * time.Microsecond
	return res, nil
}

// Revoke marks jti as revoked until until. A time already past is a no-op.
func (s *Store) Revoke(_ context.Context, jti string, until time.Time) error {
	exp := until.UnixMicro()
	if exp <= s.now().UnixMicro() {
		return nil
	}
	sh := &s.revs[s.shardString(jti)]
	sh.mu.Lock()
	if exp > sh.revoked[jti] {
		sh.revoked[jti] = exp
	}
	sh.mu.Unlock()
	return nil
}

// RevokeAll sets subject's mark to at (unix ms) for ttl, unless a later
// mark is already in place: the mark never moves backwards. ttl must be
// positive.
func (s *Store) RevokeAll(_ context.Context, subject string, at time.Time, ttl time.Duration) error {
	if ttl < time.Microsecond {
		return errTTL
	}
	ms := at.UnixMilli()
	now := s.now().UnixMicro()
	exp := now + ttl.Microseconds()
	sh := &s.revs[s.shardString(subject)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if cur, ok := sh.marks[subject]; ok && cur.expire > now && cur.at > ms {
		return nil
	}
	sh.marks[subject] = mark{at: ms, expire: exp}
	return nil
}

// IsRevoked reports whether jti is revoked or issuedAtMs is at or before
// subject's mark. An empty jti or subject is not looked up. maxStale is not
// used: the answer is always current.
func (s *Store) IsRevoked(_ context.Context, jti, subject []byte, issuedAtMs int64, _ time.Duration) (bool, error) {
	now := s.now().UnixMicro()
	if len(jti) > 0 {
		sh := &s.revs[s.shard(jti)]
		sh.mu.RLock()
		exp, ok := sh.revoked[string(jti)]
		sh.mu.RUnlock()
		if ok && exp > now {
			return true, nil
		}
	}
	if len(subject) > 0 {
		sh := &s.revs[s.shard(subject)]
		sh.mu.RLock()
		m, ok := sh.marks[string(subject)]
		sh.mu.RUnlock()
		if ok && m.expire > now && issuedAtMs <= m.at {
			return true, nil
		}
	}
	return false, nil
}

// Ping always succeeds: the store is in the process.
func (s *Store) Ping(context.Context) error { return nil }

// Close stops the janitor and waits for it. The store keeps answering
// afterwards, without expiring entries. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
	})
	return nil
}

// Len returns how many buckets and revocation entries (revoked tokens and
// revoke-all marks) the store holds, expired ones not yet swept included.
func (s *Store) Len() (buckets, revocations int) {
	for i := range s.buckets {
		sh := &s.buckets[i]
		sh.mu.Lock()
		buckets += len(sh.m)
		sh.mu.Unlock()
		rs := &s.revs[i]
		rs.mu.RLock()
		revocations += len(rs.revoked) + len(rs.marks)
		rs.mu.RUnlock()
	}
	return buckets, revocations
}

func (s *Store) janitor(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	next := 0
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			for i := 0; i < sweepShards && i < len(s.buckets); i++ {
				s.sweep(next)
				next = (next + 1) % len(s.buckets)
			}
		}
	}
}

// sweep drops the full buckets and expired revocations of shard i.
func (s *Store) sweep(i int) {
	now := s.now().UnixMicro()
	sh := &s.buckets[i]
	sh.mu.Lock()
	sh.peak = max(sh.peak, len(sh.m))
	for k, b := range sh.m {
		if b.full <= now {
			delete(sh.m, k)
		}
	}
	sh.m, sh.peak = shrink(sh.m, sh.peak)
	sh.mu.Unlock()
	rs := &s.revs[i]
	rs.mu.Lock()
	rs.revokedPeak = max(rs.revokedPeak, len(rs.revoked))
	for k, exp := range rs.revoked {
		if exp <= now {
			delete(rs.revoked, k)
		}
	}
	rs.revoked, rs.revokedPeak = shrink(rs.revoked, rs.revokedPeak)
	rs.marksPeak = max(rs.marksPeak, len(rs.marks))
	for k, m := range rs.marks {
		if m.expire <= now {
			delete(rs.marks, k)
		}
	}
	rs.marks, rs.marksPeak = shrink(rs.marks, rs.marksPeak)
	rs.mu.Unlock()
}

// shrink copies m into a map of its size when it holds a quarter or less
// of the peak it was grown to, and returns the map and its new peak.
func shrink[V any](m map[string]V, peak int) (map[string]V, int) {
	if peak < shrinkMin || len(m) > peak/4 {
		return m, peak
	}
	n := make(map[string]V, len(m))
	maps.Copy(n, m)
	return n, len(n)
}
