// Package lease is the store.Limiter of ratelimit's sync: lease: it takes
// tokens from the shared buckets of a store.Leaser (Redis, behind the
// guard) in batches, one atomic script call per batch, and admits requests
// from the batch in process.
//
// A request whose bucket has local tokens takes them under a mutex, with no
// I/O, no allocation and no goroutine hand-off. When the tokens fall to a
// quarter of a batch, a background runner renews the lease ahead of need; a
// request blocks on the store only when the local tokens are gone, within
// its own deadline. A lease that is not renewed for TTL is over: its
// unused tokens go back to the bucket, as they do when the limiter closes
// (shutdown, reload) and when a key is evicted.
//
// Batches follow the observed rate: about what the key admitted in the
// last Window, at least the request's cost, at most MaxBatch, the burst,
// and what the bucket refills in one Window (so a slow limit, such as 5 a
// minute, is leased one token at a time and stays exact).
//
// Allocations: a take from a local lease allocates nothing. A renewal ahead
// of need allocates once, in the store: the array the Redis client reads
// the lease script's reply into (its key and arguments go out from a
// pooled buffer, its deadline is the shared one of store.CallContext, and
// its flight is reused when no request waited for it). Renewals come about
// once per three quarters of a batch per key, so in steady state that is well under one
// allocation per request. A new key allocates its entry and two copies of
// the key; a request that has to wait for a renewal allocates the flight's
// channel.
//
// The store never lets the bucket plus the tokens leased out exceed the
// burst, so leasing never admits more than exact would: in any window of
// length W, at most burst + limit × W / period. What it may admit less is
// bounded by the tokens leased out: at most MaxBatch per instance.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatewayd/gatewayd/pkg/store"
)

// Defaults of Options, applied to fields left at zero.
const (
	DefaultTTL      = time.Second
	DefaultWindow   = time.Second
	DefaultMaxBatch = 64
	DefaultMaxKeys  = 16384
	DefaultTimeout  = 50 * time.Millisecond
)

// Options configure a Limiter. Zero fields take the defaults.
type Options struct {
	// TTL is how long a lease lasts without renewal before its unused
	// tokens go back to the bucket. The store keeps its record twice as
	// long, so that tokens given back late are still credited.
	TTL time.Duration
	// Window is the interval whose admissions size the next batch.
	Window time.Duration
	// MaxBatch caps the tokens one lease holds.
	MaxBatch int64
	// MaxKeys bounds the keys with lease state; the least recently used
	// key (to within touchEvery) beyond it gives its lease back and is
	// forgotten.
	MaxKeys int
	// Timeout bounds the store calls the limiter makes on its own
	// (renewals ahead of need, give-backs). A blocking Take uses its
	// caller's deadline.
	Timeout time.Duration
	// OnError, when set, is told about each failed background store call.
	OnError func(error)
}

func (o Options) withDefaults() Options {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// numShards is the number of independently locked parts of the key table.
const numShards = 64

// closeBudget bounds the time Close spends giving leases back; what is
// left then stays recorded until the store expires it (under-admission,
// never over).
const closeBudget = 2 * time.Second

// renewers is the number of goroutines that renew leases ahead of need.
const renewers = 16

// Limiter admits from leases on the buckets of a store.Leaser. It is safe
// for concurrent use; Close gives every lease back.
type Limiter struct {
	st     store.Leaser
	opts   Options
	holder string
	seed   maphash.Seed
	seq    atomic.Uint64
	shards [numShards]shard

	renew  chan *entry   // entries whose lease runs low
	quit   chan struct{} // closed by Close
	wg     sync.WaitGroup
	bg     sync.WaitGroup // give-backs of evicted keys
	closed atomic.Bool
	once   sync.Once

	// Counters, for tests and metrics.
	leases, releases, credited atomic.Int64
}

var _ store.Limiter = (*Limiter)(nil)

// shard is one part of the key table: a map and an LRU list of its
// entries, most recently used first.
type shard struct {
	mu         sync.Mutex
	m          map[string]*entry
	head, tail *entry
	max        int
	_          [40]byte // keep shards on separate cache lines
}

// entry is the lease state of one key. Its fields are guarded by its
// shard's mutex.
type entry struct {
	key        string
	keyb       []byte // key, for the store calls of renewals and give-backs
	prev, next *entry
	rate       store.Rate

	// tokens are the lease's unused tokens, usable before deadline.
	tokens int64
	// seq is the holder's recorded lease (0: none), recorded with
	// recorded tokens at most.
	seq      uint64
	recorded bool
	deadline int64 // unix ns
	expires  int64 // unix ns: when the store forgets the lease
	// remaining is the bucket's whole tokens at the last store answer.
	remaining int64

	// Batch sizing: tokens admitted in the window that began at winStart,
	// and in the window before it.
	winStart      int64
	winCount      int64
	prevCount     int64
	lastUsed      int64
	moved         int64   // unix ns when e last moved to its shard's front
	renewing      bool    // a renewal ahead of need is queued
	flight        *flight // the store call in flight, if any
	spare         *flight // a landed flight no waiter saw, for the next call
	gone          bool    // removed from the table
	pendingTokens int64
	pendingSeq    uint64 // a give-back that failed, retried until expires
}

// New returns a Limiter leasing from st. Close it to give its leases back
// and stop its goroutines.
func New(st store.Leaser, opts Options) *Limiter {
	opts = opts.withDefaults()
	var id [12]byte
	_, _ = rand.Read(id[:])
	l := &Limiter{
		st:     st,
		opts:   opts,
		holder: hex.EncodeToString(id[:]),
		seed:   maphash.MakeSeed(),
		renew:  make(chan *entry, 1024),
		quit:   make(chan struct{}),
	}
	per := max(opts.MaxKeys/numShards, 1)
	for i := range l.shards {
		l.shards[i].m = make(map[string]*entry)
		l.shards[i].max = per
	}
	l.wg.Add(renewers + 1)
	for range renewers {
		go l.renewer()
	}
	go l.sweeper()
	return l
}

// Holder returns the name the limiter's leases are recorded under.
func (l *Limiter) Holder() string { return l.holder }

// Stats returns how many leases were renewed, given back, and tokens the
// store credited for give-backs.
func (l *Limiter) Stats() (leases, releases, credited int64) {
	return l.leases.Load(), l.releases.Load(), l.credited.Load()
}

// valid mirrors the stores' checks; an invalid rate or cost goes to the
// store's Take, which reports it.
func valid(r store.Rate, cost int64) bool {
	return r.Limit >= 1 && r.Burst >= 1 && r.Period >= time.Microsecond && cost >= 1 && cost <= r.Burst
}

// Take implements store.Limiter. With local tokens it answers at once;
// otherwise it renews the lease within ctx and answers from the store.
//
// Remaining is this instance's view: the whole tokens the bucket had at
// the last store answer plus the lease's unused tokens, at most the burst.
// Reset is derived from it.
func (l *Limiter) Take(ctx context.Context, key []byte, rate store.Rate, cost int64) (store.Result, error) {
	if !valid(rate, cost) || l.closed.Load() {
		return l.st.Take(ctx, key, rate, cost)
	}
	now := time.Now().UnixNano()
	sh := &l.shards[maphash.Bytes(l.seed, key)%numShards]
	sh.mu.Lock()
	e := sh.m[string(key)]
	if e == nil {
		e = sh.insert(l, string(key))
		e.moved = now
	} else if now-e.moved >= int64(touchEvery) {
		sh.touch(e)
		e.moved = now
	}
	e.rate = rate
	e.lastUsed = now
	e.count(now, cost, l.opts.Window)
	if e.tokens >= cost {
		e.tokens -= cost
		res := e.result(true)
		if b := l.batch(e, cost); b > 1 && e.tokens <= renewAt(b) && !e.renewing && e.flight == nil {
			e.renewing = true
			select {
			case l.renew <- e:
			default:
				e.renewing = false
			}
		}
		sh.mu.Unlock()
		return res, nil
	}
	return l.takeBlocking(ctx, sh, e, key, cost)
}

// flight is the one store call in flight for an entry: a renewal ahead
// of need or a request's. Requests that find the local tokens gone while
// it runs wait for it instead of calling the store too.
//
// A flight's done channel is made by the first request that waits for it;
// a flight that lands with none is reused for the entry's next call, so a
// renewal ahead of need that nobody waited for allocates nothing here.
type flight struct {
	done chan struct{} // nil until a request waits
	// Set before done is closed: the rejection or error the call ended
	// with, which waiters share when the tokens are still missing.
	res store.Result
	err error
	// ahead marks a renewal ahead of need: it ran on the limiter's own
	// deadline, so its failure is not the waiters' answer (they call the
	// store themselves, within theirs).
	ahead bool
}

// takeBlocking takes cost tokens that e does not hold: it waits for the
// entry's call in flight, or renews the lease itself with cost tokens
// used at once, within ctx. sh is locked on entry and unlocked on return.
func (l *Limiter) takeBlocking(ctx context.Context, sh *shard, e *entry, key []byte, cost int64) (store.Result, error) {
	for {
		if e.tokens >= cost {
			e.tokens -= cost
			res := e.result(true)
			sh.mu.Unlock()
			return res, nil
		}
		f := e.flight
		if f == nil {
			break
		}
		if f.done == nil {
			f.done = make(chan struct{})
		}
		sh.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return store.Result{}, store.ErrTimeout
		}
		sh.mu.Lock()
		if e.tokens < cost && (f.err != nil && !f.ahead || f.err == nil && !f.res.Allowed && f.res.RetryAfter > 0) {
			// The call failed, or the bucket had too few tokens: so it
			// has for this request.
			res, err := f.res, f.err
			sh.mu.Unlock()
			return res, err
		}
	}
	b := l.batch(e, cost)
	// The request holds the lease's remaining tokens while it waits;
	// tokens of the current lease waiting to be given back are taken back
	// into it.
	carry := e.tokens
	if e.pendingSeq != 0 && e.pendingSeq == e.seq {
		carry += e.pendingTokens
		e.pendingTokens, e.pendingSeq = 0, 0
	}
	carry = min(carry, e.rate.Burst)
	e.tokens = 0
	f := e.newFlight(false)
	now := time.Now().UnixNano()
	req := store.LeaseRequest{
		Rate: e.rate, Holder: l.holder, Seq: e.seq, NewSeq: l.seq.Add(1),
		Carry: carry, Want: max(b-carry, 0), Use: cost, TTL: 2 * l.opts.TTL,
	}
	sh.mu.Unlock()
	g, err := l.st.Lease(ctx, key, req)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	defer l.land(e, f)
	if err != nil {
		// Whether or not the store ran the call, the carried tokens are
		// still the holder's under lease Seq.
		e.tokens += carry
		f.err = err
		return store.Result{}, err
	}
	l.leases.Add(1)
	e.adopt(req.NewSeq, g, now, l.opts.TTL)
	if !g.OK {
		e.tokens += g.Kept
		f.res = store.Result{
			Remaining:  min(g.Remaining+e.tokens, e.rate.Burst),
			Reset:      g.Reset,
			RetryAfter: g.RetryAfter,
		}
		return f.res, nil
	}
	e.tokens += g.Kept + g.Granted - cost
	f.res = e.result(true)
	return f.res, nil
}

// newFlight starts e's call in flight, reusing the spare flight if there
// is one. The shard is locked.
func (e *entry) newFlight(ahead bool) *flight {
	f := e.spare
	if f == nil {
		f = new(flight)
	}
	e.spare = nil
	*f = flight{ahead: ahead}
	e.flight = f
	return f
}

// land ends e's call in flight f: waiters go on. A flight no request
// waited for is not referenced anywhere else and becomes e's spare. The
// shard is locked.
func (l *Limiter) land(e *entry, f *flight) {
	e.flight = nil
	if f.done != nil {
		close(f.done)
	} else {
		e.spare = f
	}
	if e.gone {
		l.releaseGone(e)
	}
}

// adopt records a store answer to a renewal numbered seq, sent at sent.
func (e *entry) adopt(seq uint64, g store.LeaseGrant, sent int64, ttl time.Duration) {
	if seq > e.seq {
		e.seq = seq
		e.recorded = g.Recorded > 0
		e.deadline = sent + int64(ttl)
		e.expires = sent + 2*int64(ttl)
		e.pendingTokens, e.pendingSeq = 0, 0
	}
	e.remaining = g.Remaining
}

// result is an admission's Result from e's view of the bucket.
func (e *entry) result(allowed bool) store.Result {
	r := e.rate
	rem := min(e.remaining+e.tokens, r.Burst)
	us := r.Period.Microseconds()
	reset := ((r.Burst-rem)*us + r.Limit - 1) / r.Limit
	return store.Result{Allowed: allowed, Remaining: rem, Reset: time.Duration(reset) * time.Microsecond}
}

// count adds cost to the admissions of the current window.
func (e *entry) count(now, cost int64, window time.Duration) {
	if d := now - e.winStart; d >= int64(window) {
		if d < 2*int64(window) {
			e.prevCount = e.winCount
		} else {
			e.prevCount = 0
		}
		e.winStart, e.winCount = now, 0
	}
	e.winCount += cost
}

// batch is the size of e's next lease: what the key admitted in a window,
// within [cost, cap], where cap is the smallest of MaxBatch, the burst and
// the bucket's refill in one window (at least 1).
func (l *Limiter) batch(e *entry, cost int64) int64 {
	r := e.rate
	byRate := int64(float64(r.Limit) * float64(l.opts.Window) / float64(r.Period))
	hi := min(l.opts.MaxBatch, r.Burst, max(byRate, 1))
	b := min(max(e.prevCount, e.winCount), hi)
	return max(b, cost, 1)
}

// renewAt is how few tokens a lease of batch b may have left before it is
// renewed ahead of need: a quarter of the batch, at least one. A batch is
// about what the key admits in a Window, so the renewal has a quarter of
// that (250 ms by default) to land before a request waits for it, and each
// renewal brings about three quarters of a batch.
func renewAt(b int64) int64 { return max(b/4, 1) }

// renewer renews the leases queued by Take until the limiter closes.
func (l *Limiter) renewer() {
	defer l.wg.Done()
	for {
		select {
		case e := <-l.renew:
			l.renewAhead(e)
		case <-l.quit:
			return
		}
	}
}

// renewAhead renews e's lease without using tokens, unless a call is
// already in flight for it.
func (l *Limiter) renewAhead(e *entry) {
	sh := &l.shards[maphash.String(l.seed, e.key)%numShards]
	sh.mu.Lock()
	e.renewing = false
	if e.gone || e.flight != nil {
		sh.mu.Unlock()
		return
	}
	now := time.Now().UnixNano()
	carry := min(e.tokens, e.rate.Burst)
	b := l.batch(e, 1)
	if carry > renewAt(b) {
		// Renewed meanwhile.
		sh.mu.Unlock()
		return
	}
	f := e.newFlight(true)
	req := store.LeaseRequest{
		Rate: e.rate, Holder: l.holder, Seq: e.seq, NewSeq: l.seq.Add(1),
		Carry: carry, Want: max(b-carry, 0), TTL: 2 * l.opts.TTL,
	}
	sh.mu.Unlock()
	// A shared deadline (store.CallContext): no context and timer per
	// renewal.
	ctx, cancel := store.CallContext(l.opts.Timeout)
	g, err := l.st.Lease(ctx, e.keyb, req)
	cancel()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	defer l.land(e, f)
	if err != nil {
		f.err = err
		l.reportError(err)
		return
	}
	l.leases.Add(1)
	e.adopt(req.NewSeq, g, now, l.opts.TTL)
	// Requests spent some of the carried tokens meanwhile: the lease keeps
	// what is left of them.
	e.tokens = min(e.tokens, g.Kept) + g.Granted
	f.res = e.result(true)
}

// releaseGone gives back the lease of an entry removed from the table:
// its unused tokens, with a give-back still to retry (of the same lease:
// a renewal clears those). The shard is locked.
func (l *Limiter) releaseGone(e *entry) {
	tokens := e.tokens
	if e.pendingSeq != 0 {
		tokens += e.pendingTokens
	}
	if tokens == 0 && !e.recorded && e.pendingSeq == 0 {
		return
	}
	seq, rate, key := e.seq, e.rate, e.keyb
	e.tokens, e.pendingTokens, e.pendingSeq, e.recorded = 0, 0, 0, false
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		l.giveBack(key, rate, seq, min(tokens, rate.Burst))
	}()
}

// giveBack releases tokens of lease seq, once, within Timeout. key is
// only read.
func (l *Limiter) giveBack(key []byte, rate store.Rate, seq uint64, tokens int64) bool {
	ctx, cancel := store.CallContext(l.opts.Timeout)
	n, err := l.st.Release(ctx, key, store.LeaseRequest{
		Rate: rate, Holder: l.holder, Seq: seq, Carry: tokens, TTL: 2 * l.opts.TTL,
	})
	cancel()
	if err != nil {
		l.reportError(err)
		return false
	}
	l.releases.Add(1)
	l.credited.Add(n)
	return true
}

func (l *Limiter) reportError(err error) {
	if l.opts.OnError != nil && !errors.Is(err, context.Canceled) {
		l.opts.OnError(err)
	}
}

// insert adds a new entry for key at the front, evicting the least
// recently used entry when the shard is full. The shard is locked.
func (sh *shard) insert(l *Limiter, key string) *entry {
	if len(sh.m) >= sh.max && sh.tail != nil {
		old := sh.tail
		sh.remove(old)
		if old.flight == nil {
			l.releaseGone(old)
		}
	}
	e := &entry{key: key, keyb: []byte(key)}
	sh.m[key] = e
	e.next = sh.head
	if sh.head != nil {
		sh.head.prev = e
	}
	sh.head = e
	if sh.tail == nil {
		sh.tail = e
	}
	return e
}

// touchEvery is how often a key in use moves to the front of its shard's
// LRU list: eviction follows use to within this much, and a busy key does
// not rewrite its neighbours' links (a cache miss each) on every request.
const touchEvery = time.Second

// touch moves e to the front. The shard is locked.
func (sh *shard) touch(e *entry) {
	if sh.head == e {
		return
	}
	e.prev.next = e.next
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		sh.tail = e.prev
	}
	e.prev, e.next = nil, sh.head
	sh.head.prev = e
	sh.head = e
}

// remove takes e out of the table. The shard is locked.
func (sh *shard) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		sh.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		sh.tail = e.prev
	}
	e.prev, e.next = nil, nil
	delete(sh.m, e.key)
	e.gone = true
}

// sweeper gives back leases that ran their TTL without renewal, retries
// give-backs that failed, and forgets idle keys.
func (l *Limiter) sweeper() {
	defer l.wg.Done()
	tick := time.NewTicker(max(l.opts.TTL/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			l.sweep(time.Now().UnixNano(), false)
		case <-l.quit:
			return
		}
	}
}

// giveBackJob is one lease to give back.
type giveBackJob struct {
	e      *entry
	rate   store.Rate
	seq    uint64
	tokens int64
}

// sweep gives back every lease whose deadline has passed (all of them
// when final), and removes keys idle for several TTLs with nothing to give
// back.
func (l *Limiter) sweep(now int64, final bool) {
	idle := 4 * int64(l.opts.TTL)
	for i := range l.shards {
		sh := &l.shards[i]
		var jobs []giveBackJob
		sh.mu.Lock()
		for e := sh.tail; e != nil; {
			prev := e.prev
			if (e.tokens > 0 || e.recorded) && (final || now >= e.deadline && e.flight == nil) {
				// Give back the unused tokens, or, with none, end the
				// record so the bucket refills to the full burst.
				if e.pendingSeq == e.seq {
					e.pendingTokens += e.tokens
				} else {
					e.pendingTokens, e.pendingSeq = e.tokens, e.seq
				}
				e.tokens = 0
				e.recorded = false
			}
			if e.pendingSeq != 0 && now >= e.expires {
				// The store has forgotten the lease: nothing to credit.
				e.pendingTokens, e.pendingSeq = 0, 0
			}
			if e.pendingSeq != 0 {
				jobs = append(jobs, giveBackJob{e, e.rate, e.pendingSeq, e.pendingTokens})
			} else if e.flight == nil && !e.renewing && e.tokens == 0 && !e.recorded && now-e.lastUsed >= idle {
				sh.remove(e)
			}
			e = prev
		}
		sh.mu.Unlock()
		for _, j := range jobs {
			if final && time.Now().UnixNano()-now > int64(closeBudget) {
				// The store is slow or down: the rest is left to expire.
				break
			}
			ok := l.giveBack(j.e.keyb, j.rate, j.seq, j.tokens)
			sh.mu.Lock()
			if ok && j.e.pendingSeq == j.seq {
				j.e.pendingTokens, j.e.pendingSeq = 0, 0
			}
			sh.mu.Unlock()
		}
	}
}

// Close stops the limiter and gives back every lease (each give-back
// within Timeout). Later Takes go to the store directly.
func (l *Limiter) Close() error {
	l.once.Do(func() {
		l.closed.Store(true)
		close(l.quit)
		l.wg.Wait()
		l.sweep(time.Now().UnixNano(), true)
		l.bg.Wait()
	})
	return nil
}
