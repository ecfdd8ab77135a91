package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/gatewayd/gatewayd/pkg/metrics"
)

// Defaults of GuardOptions, applied to fields left at zero.
const (
	// DefaultMaxInFlight caps the calls a guarded store holds at once. It
	// stays below the 1024 commands a Redis connection queues (the client
	// library's ring), so a call never waits for room in that queue.
	DefaultMaxInFlight = 512
	// DefaultBreakerFailures is how many failures in a row, with no
	// success between them for at least BreakerQuiet, open the breaker.
	DefaultBreakerFailures = 5
	// DefaultBreakerCooldown is how long the breaker stays open before it
	// lets one probe call through.
	DefaultBreakerCooldown = time.Second
	// DefaultHold bounds how long a call may keep running inside the
	// store after its caller has given up on it.
	DefaultHold = 4 * time.Second
	// DefaultMaxRunners caps the goroutines that run store calls. Calls
	// beyond it wait in the guard's queue, within their callers'
	// deadlines, for a runner to finish: a closed loop at 256 connections
	// keeps 64 runners busy instead of one goroutine stack per call in
	// flight.
	DefaultMaxRunners = 64
)

// BreakerQuiet is how long a run of failures must last, with no call
// succeeding meanwhile, before it opens the breaker. Under load, a store
// that answers some calls (a Redis Cluster with one shard failing over)
// keeps succeeding within this much time and the breaker stays closed.
const BreakerQuiet = 100 * time.Millisecond

// workerIdle is how long an idle call runner waits for work before it
// exits: runners started for a burst, or held by a silent store, go away
// soon after.
const workerIdle = 5 * time.Second

// Errors of a guarded store, each wrapping ErrUnavailable: callers answer
// them as they answer a store that is down (on_store_error).
var (
	// ErrOverloaded is returned at once, without calling the store, when
	// MaxInFlight calls are already in flight.
	ErrOverloaded = fmt.Errorf("%w: too many calls in flight", ErrUnavailable)
	// ErrBreakerOpen is returned at once, without calling the store, while
	// the breaker is open after repeated failures.
	ErrBreakerOpen = fmt.Errorf("%w: circuit breaker open after repeated failures", ErrUnavailable)
	// ErrTimeout is returned when the caller's deadline passes before the
	// store answers; it also matches context.DeadlineExceeded.
	ErrTimeout = fmt.Errorf("%w: %w", ErrUnavailable, context.DeadlineExceeded)
)

// GuardOptions configure a Guarded store. Zero fields take the defaults.
type GuardOptions struct {
	// MaxInFlight caps the calls in flight: calls the store has not
	// answered yet, whether or not their callers still wait. Admission is
	// non-blocking: a call over the cap fails at once with ErrOverloaded.
	MaxInFlight int
	// BreakerFailures is how many failures in a row (timeouts, calls over
	// the cap, unavailability; no success between them for at least
	// BreakerQuiet) open the breaker.
	BreakerFailures int
	// BreakerCooldown is how long the breaker stays open before one probe
	// call is let through (half-open); the probe's outcome closes it or
	// opens it again.
	BreakerCooldown time.Duration
	// Hold bounds how long a call keeps running inside the store after its
	// caller has returned; it should exceed the time the store takes to
	// declare a silent connection dead, so that the store fails such calls
	// itself.
	Hold time.Duration
	// MaxRunners caps the goroutines running store calls (at most
	// MaxInFlight). A call that finds every runner busy waits in a queue
	// for the next one to finish; its caller still returns at its
	// deadline, and the call still counts as in flight.
	MaxRunners int
}

func (o GuardOptions) withDefaults() GuardOptions {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.BreakerFailures <= 0 {
		o.BreakerFailures = DefaultBreakerFailures
	}
	if o.BreakerCooldown <= 0 {
		o.BreakerCooldown = DefaultBreakerCooldown
	}
	if o.Hold <= 0 {
		o.Hold = DefaultHold
	}
	if o.MaxRunners <= 0 {
		o.MaxRunners = DefaultMaxRunners
	}
	o.MaxRunners = min(o.MaxRunners, o.MaxInFlight)
	return o
}

// Guarded is a Store whose every call goes through one guard: the caller's
// deadline, an in-flight cap and a circuit breaker. It is what plugins and
// the auth service use in front of a store that does I/O, so that a store
// that stops answering without closing its connections (a paused server,
// a long-running script, a black-holed network) is handled exactly like
// one that is down:
//
//   - the call runs on a separate goroutine, and the caller waits for it
//     only until its context's deadline; the client library may go on
//     holding the call (its internal queues do not all honour contexts),
//     but never the caller;
//   - at most MaxInFlight calls are in flight, counted until the store
//     answers them, so the number of goroutines a silent store can hold is
//     bounded; a call over the cap fails at once with ErrOverloaded;
//   - after BreakerFailures failures in a row the breaker opens: calls fail
//     at once with ErrBreakerOpen for BreakerCooldown, then one probe call
//     goes through at a time until one succeeds.
//
// Every error of the guard wraps ErrUnavailable. The hot-path calls (Take,
// IsRevoked) do not allocate in steady state: admission and the breaker are
// atomics, and the per-call state is pooled. A revocation check the inner
// store can answer from memory (CachedRevocations) skips the guard: it does
// no I/O, so there is nothing to bound.
type Guarded struct {
	inner  Store
	cached CachedRevocations // inner, when it keeps revocation answers
	auth   AuthStore
	g      guard
}

var (
	_ Store             = (*Guarded)(nil)
	_ CachedRevocations = (*Guarded)(nil)
	_ AuthStore         = guardedAuth{}
)

// NewGuarded returns inner behind a guard. auth, when not nil, is the auth
// store on the same connection: Auth returns it behind the same guard.
func NewGuarded(inner Store, auth AuthStore, opts GuardOptions) *Guarded {
	s := &Guarded{inner: inner, auth: auth}
	s.cached, _ = inner.(CachedRevocations)
	s.g.init(opts.withDefaults())
	metrics.SetStoreInflight(s.g.inflight.Load)
	return s
}

// Inner returns the store behind the guard.
func (s *Guarded) Inner() Store { return s.inner }

// Auth returns the auth store behind the same guard, or nil when
// NewGuarded was given none.
func (s *Guarded) Auth() AuthStore {
	if s.auth == nil {
		return nil
	}
	return guardedAuth{s}
}

// BreakerState returns the breaker's state: metrics.BreakerClosed,
// metrics.BreakerOpen or metrics.BreakerHalfOpen.
func (s *Guarded) BreakerState() int { return int(s.g.state.Load()) }

// InFlight returns the number of calls the store holds.
func (s *Guarded) InFlight() int64 { return s.g.inflight.Load() }

// Take implements Limiter.
func (s *Guarded) Take(ctx context.Context, key []byte, rate Rate, cost int64) (Result, error) {
	c, err := s.g.begin(ctx)
	if err != nil {
		return Result{}, err
	}
	c.op, c.s = opTake, s
	c.key = append(c.key[:0], key...)
	c.rate, c.cost = rate, cost
	if !s.g.await(ctx, c) {
		return Result{}, ErrTimeout
	}
	res, err := c.res, c.err
	s.g.end(c)
	return res, err
}

// Lease implements Leaser, under the guard like Take; it fails with
// ErrLeasesUnsupported when the store behind the guard cannot lease.
func (s *Guarded) Lease(ctx context.Context, key []byte, req LeaseRequest) (LeaseGrant, error) {
	if _, ok := s.inner.(Leaser); !ok {
		return LeaseGrant{}, ErrLeasesUnsupported
	}
	c, err := s.g.begin(ctx)
	if err != nil {
		return LeaseGrant{}, err
	}
	c.op, c.s = opLease, s
	c.key = append(c.key[:0], key...)
	c.lease = req
	if !s.g.await(ctx, c) {
		return LeaseGrant{}, ErrTimeout
	}
	grant, err := c.grant, c.err
	s.g.end(c)
	return grant, err
}

// Release implements Leaser, under the guard like Take; it fails with
// ErrLeasesUnsupported when the store behind the guard cannot lease.
func (s *Guarded) Release(ctx context.Context, key []byte, req LeaseRequest) (int64, error) {
	if _, ok := s.inner.(Leaser); !ok {
		return 0, ErrLeasesUnsupported
	}
	c, err := s.g.begin(ctx)
	if err != nil {
		return 0, err
	}
	c.op, c.s = opRelease, s
	c.key = append(c.key[:0], key...)
	c.lease = req
	if !s.g.await(ctx, c) {
		return 0, ErrTimeout
	}
	credited, err := c.grant.Granted, c.err
	s.g.end(c)
	return credited, err
}

// CachedRevoked implements CachedRevocations: the inner store's answer
// from memory, which involves no I/O and so neither a runner nor the
// in-flight cap. While the breaker is not closed it answers nothing, so
// that the calls of an outage fail (or probe) exactly as without the
// cache.
func (s *Guarded) CachedRevoked(jti, subject []byte, issuedAtMs int64, maxStale time.Duration) (revoked, ok bool) {
	if s.cached == nil || s.g.state.Load() != metrics.BreakerClosed {
		return false, false
	}
	return s.cached.CachedRevoked(jti, subject, issuedAtMs, maxStale)
}

// IsRevoked implements Revocations. An answer CachedRevoked has is
// returned at once; anything else is a call under the guard.
func (s *Guarded) IsRevoked(ctx context.Context, jti, subject []byte, issuedAtMs int64, maxStale time.Duration) (bool, error) {
	if revoked, ok := s.CachedRevoked(jti, subject, issuedAtMs, maxStale); ok {
		return revoked, nil
	}
	c, err := s.g.begin(ctx)
	if err != nil {
		return false, err
	}
	c.op, c.s = opIsRevoked, s
	c.key = append(c.key[:0], jti...)
	c.subject = append(c.subject[:0], subject...)
	c.issuedAtMs, c.maxStale = issuedAtMs, maxStale
	if !s.g.await(ctx, c) {
		return false, ErrTimeout
	}
	revoked, err := c.revoked, c.err
	s.g.end(c)
	return revoked, err
}

// Revoke implements Revocations.
func (s *Guarded) Revoke(ctx context.Context, jti string, until time.Time) error {
	return s.do(ctx, func(ctx context.Context) error { return s.inner.Revoke(ctx, jti, until) })
}

// RevokeAll implements Revocations.
func (s *Guarded) RevokeAll(ctx context.Context, subject string, at time.Time, ttl time.Duration) error {
	return s.do(ctx, func(ctx context.Context) error { return s.inner.RevokeAll(ctx, subject, at, ttl) })
}

// Ping implements Store. Concurrent pings share one call to the store:
// readiness probes arriving while a ping is in flight wait for its result
// (each within its own deadline) instead of adding calls to a silent
// store. The shared call has the deadline of the ping that started it (at
// most Hold).
func (s *Guarded) Ping(ctx context.Context) error {
	s.g.pingMu.Lock()
	p := s.g.ping
	if p == nil {
		p = &sharedPing{done: make(chan struct{})}
		s.g.ping = p
		deadline := time.Now().Add(s.g.opts.Hold)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		go func() {
			pctx, cancel := context.WithDeadline(context.Background(), deadline)
			err := s.do(pctx, s.inner.Ping)
			cancel()
			s.g.pingMu.Lock()
			p.err = err
			s.g.ping = nil
			s.g.pingMu.Unlock()
			close(p.done)
		}()
	}
	s.g.pingMu.Unlock()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ErrTimeout
	}
}

// sharedPing is one ping to the store, awaited by every concurrent Ping.
type sharedPing struct {
	done chan struct{}
	err  error // set before done is closed
}

// Close closes the store and stops the idle call runners. Calls still in
// flight end as the closed store fails them.
func (s *Guarded) Close() error {
	err := s.inner.Close()
	s.g.close()
	return err
}

// do runs fn, which calls the store, under the guard: the call path of
// everything but the hot-path calls, with one closure per call.
func (s *Guarded) do(ctx context.Context, fn func(context.Context) error) error {
	_, err := s.result(ctx, fn)
	return err
}

// result is do for a call with results: fn stores them in variables of the
// caller, which the caller may read only when result reports that the
// store answered (after a timeout fn may still write them).
func (s *Guarded) result(ctx context.Context, fn func(context.Context) error) (answered bool, err error) {
	c, err := s.g.begin(ctx)
	if err != nil {
		return false, err
	}
	c.op, c.s, c.fn = opFunc, s, fn
	if !s.g.await(ctx, c) {
		return false, ErrTimeout
	}
	err = c.err
	s.g.end(c)
	return true, err
}

// guardedAuth is the auth store of a Guarded, behind its guard.
type guardedAuth struct{ s *Guarded }

// CreateUser implements UserStore.
func (a guardedAuth) CreateUser(ctx context.Context, u *User) error {
	return a.s.do(ctx, func(ctx context.Context) error { return a.s.auth.CreateUser(ctx, u) })
}

// UserByEmail implements UserStore.
func (a guardedAuth) UserByEmail(ctx context.Context, email string) (*User, error) {
	var u *User
	if ok, err := a.s.result(ctx, func(ctx context.Context) (err error) { u, err = a.s.auth.UserByEmail(ctx, email); return err }); !ok || err != nil {
		return nil, err
	}
	return u, nil
}

// UserByID implements UserStore.
func (a guardedAuth) UserByID(ctx context.Context, id string) (*User, error) {
	var u *User
	if ok, err := a.s.result(ctx, func(ctx context.Context) (err error) { u, err = a.s.auth.UserByID(ctx, id); return err }); !ok || err != nil {
		return nil, err
	}
	return u, nil
}

// SetPasswordHash implements UserStore.
func (a guardedAuth) SetPasswordHash(ctx context.Context, id string, hash []byte) error {
	return a.s.do(ctx, func(ctx context.Context) error { return a.s.auth.SetPasswordHash(ctx, id, hash) })
}

// CreateSession implements SessionStore.
func (a guardedAuth) CreateSession(ctx context.Context, sess *Session) error {
	return a.s.do(ctx, func(ctx context.Context) error { return a.s.auth.CreateSession(ctx, sess) })
}

// RotateSession implements SessionStore.
func (a guardedAuth) RotateSession(ctx context.Context, r *Rotation) (RotateResult, error) {
	var res RotateResult
	if ok, err := a.s.result(ctx, func(ctx context.Context) (err error) { res, err = a.s.auth.RotateSession(ctx, r); return err }); !ok || err != nil {
		return RotateResult{}, err
	}
	return res, nil
}

// DeleteSession implements SessionStore.
func (a guardedAuth) DeleteSession(ctx context.Context, userID, sessionID string) error {
	return a.s.do(ctx, func(ctx context.Context) error { return a.s.auth.DeleteSession(ctx, userID, sessionID) })
}

// DeleteUserSessions implements SessionStore.
func (a guardedAuth) DeleteUserSessions(ctx context.Context, userID string) error {
	return a.s.do(ctx, func(ctx context.Context) error { return a.s.auth.DeleteUserSessions(ctx, userID) })
}

// LockedFor implements Lockouts.
func (a guardedAuth) LockedFor(ctx context.Context, key string, p LockoutPolicy) (time.Duration, error) {
	var d time.Duration
	if ok, err := a.s.result(ctx, func(ctx context.Context) (err error) { d, err = a.s.auth.LockedFor(ctx, key, p); return err }); !ok || err != nil {
		return 0, err
	}
	return d, nil
}

// ReserveFailure implements Lockouts.
func (a guardedAuth) ReserveFailure(ctx context.Context, key string, p LockoutPolicy) (time.Duration, error) {
	var d time.Duration
	if ok, err := a.s.result(ctx, func(ctx context.Context) (err error) { d, err = a.s.auth.ReserveFailure(ctx, key, p); return err }); !ok || err != nil {
		return 0, err
	}
	return d, nil
}

// ResetFailures implements Lockouts.
func (a guardedAuth) ResetFailures(ctx context.Context, key string) error {
	return a.s.do(ctx, func(ctx context.Context) error { return a.s.auth.ResetFailures(ctx, key) })
}

// Operations a call runs.
const (
	opTake = iota
	opIsRevoked
	opLease
	opRelease
	opFunc
)

// States of a call between its caller and the goroutine running it.
const (
	callRunning   = iota
	callDone      // finished while the caller waited: done holds a token
	callAbandoned // the caller's deadline passed first: the runner recycles it
)

// call is one store call handed to a runner goroutine. Its arguments are
// copies: the caller may return, and reuse its buffers, before the store
// answers.
type call struct {
	s     *Guarded
	op    int
	probe bool
	state atomic.Int32
	done  chan struct{} // buffered 1

	key, subject []byte // Take's key; IsRevoked's jti and subject
	rate         Rate
	cost         int64
	issuedAtMs   int64
	maxStale     time.Duration
	fn           func(context.Context) error
	lease        LeaseRequest // Lease's and Release's request

	res     Result
	grant   LeaseGrant // Lease's answer; Release's credit in Granted
	revoked bool
	err     error
}

var calls = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

// exec runs the call against the store within ctx.
func (c *call) exec(ctx context.Context) {
	switch c.op {
	case opTake:
		c.res, c.err = c.s.inner.Take(ctx, c.key, c.rate, c.cost)
	case opIsRevoked:
		c.revoked, c.err = c.s.inner.IsRevoked(ctx, c.key, c.subject, c.issuedAtMs, c.maxStale)
	case opLease:
		c.grant, c.err = c.s.inner.(Leaser).Lease(ctx, c.key, c.lease)
	case opRelease:
		c.grant = LeaseGrant{}
		c.grant.Granted, c.err = c.s.inner.(Leaser).Release(ctx, c.key, c.lease)
	default:
		c.err = c.fn(ctx)
	}
}

// recycle clears c and returns it to the pool. Small buffers are kept.
func recycle(c *call) {
	if cap(c.key) > 1024 {
		c.key = nil
	}
	if cap(c.subject) > 1024 {
		c.subject = nil
	}
	c.s, c.fn, c.err = nil, nil, nil
	c.res, c.revoked, c.probe = Result{}, false, false
	c.lease, c.grant = LeaseRequest{}, LeaseGrant{}
	c.state.Store(callRunning)
	calls.Put(c)
}

// guard holds the admission counter, the breaker and the call runners of
// a Guarded.
type guard struct {
	opts     GuardOptions
	inflight atomic.Int64

	// Breaker: state is a metrics.Breaker* value. failures counts the
	// current run of failures, which began at runStart (unix ns);
	// openUntil (unix ns) ends the open state. Transitions take mu.
	state     atomic.Int32
	failures  atomic.Int32
	runStart  atomic.Int64
	openUntil atomic.Int64
	mu        sync.Mutex

	// idle holds the runners waiting for a call, the most recently idle
	// last: a call goes to the runner that finished last, so that the
	// runners a burst started and steady traffic does not need stay idle
	// and exit after workerIdle.
	//
	// runners counts the runner goroutines, at most opts.MaxRunners; when
	// they are all busy, calls wait in queue (room for MaxInFlight, so
	// that an admitted call never blocks there). A runner takes a queued
	// call before it counts itself idle, under idleMu, and a call is
	// queued under idleMu only when no runner is idle: a queued call never
	// waits while a runner idles.
	idleMu  sync.Mutex
	idle    []*runner
	runners int
	queue   chan *call
	quit    chan struct{} // closed by close

	pingMu sync.Mutex
	ping   *sharedPing

	opened, overloaded, breakerRejected, timeouts *vm.Counter
}

func (g *guard) init(opts GuardOptions) {
	g.opts = opts
	g.quit = make(chan struct{})
	g.queue = make(chan *call, opts.MaxInFlight)
	g.opened = metrics.StoreBreakerOpened()
	g.overloaded = metrics.StoreRejected(metrics.StoreRejectedOverload)
	g.breakerRejected = metrics.StoreRejected(metrics.StoreRejectedBreaker)
	g.timeouts = metrics.StoreTimeouts()
	metrics.SetStoreBreakerState(metrics.BreakerClosed)
}

// begin admits a call and returns it, or fails at once: the caller's
// deadline has passed, the breaker is open, or the cap is reached.
func (g *guard) begin(ctx context.Context) (*call, error) {
	if ctx.Err() != nil {
		return nil, ErrTimeout
	}
	probe, ok := g.allow()
	if !ok {
		g.breakerRejected.Inc()
		return nil, ErrBreakerOpen
	}
	if g.inflight.Add(1) > int64(g.opts.MaxInFlight) {
		g.inflight.Add(-1)
		// The store holds MaxInFlight calls it has not answered: a
		// failure like a timeout (a failed probe, half-open).
		g.failure(probe, time.Now())
		g.overloaded.Inc()
		return nil, ErrOverloaded
	}
	c := calls.Get().(*call)
	c.probe = probe
	return c, nil
}

// await hands c to a runner and waits until the store answers or ctx
// ends, whichever comes first. It reports whether the store answered; if
// not, c belongs to the runner from then on and the timeout is recorded.
func (g *guard) await(ctx context.Context, c *call) bool {
	// Read before the hand-off: once the caller abandons c, the runner
	// recycles it concurrently.
	probe := c.probe
	g.dispatch(c)
	wait := ctx.Done()
	if wait == nil {
		// No deadline: wait at most Hold, the runner's own bound.
		var cancel context.CancelFunc
		ctx, cancel = holdContext(g.opts.Hold)
		defer cancel()
		wait = ctx.Done()
	}
	select {
	case <-c.done:
		return true
	case <-wait:
	}
	if !c.state.CompareAndSwap(callRunning, callAbandoned) {
		// The answer came as the deadline passed: take it.
		<-c.done
		return true
	}
	g.timeouts.Inc()
	g.failure(probe, time.Now())
	return false
}

// end records the outcome of an answered call and recycles it.
func (g *guard) end(c *call) {
	if c.err != nil && errors.Is(c.err, ErrUnavailable) {
		g.failure(c.probe, time.Now())
	} else {
		g.success(c.probe)
	}
	recycle(c)
}

// runner is one runner goroutine's mailbox: a caller that takes it off
// the idle stack sends it exactly one call.
type runner struct {
	calls chan *call // buffered 1
}

// dispatch hands c to the most recently idle runner, claiming it, or
// starts a runner for it when none is idle, or queues it for the next
// runner to finish when MaxRunners are busy.
//
// Runners put themselves on the idle stack before they answer their call's
// caller, so a caller that makes its next call at once finds the runner it
// just used; a claimed runner is off the stack and receives exactly one
// call.
func (g *guard) dispatch(c *call) {
	g.idleMu.Lock()
	n := len(g.idle)
	if n == 0 {
		if g.runners >= g.opts.MaxRunners {
			select {
			case g.queue <- c: // never blocks: c is one of at most MaxInFlight admitted calls
				g.idleMu.Unlock()
				return
			default:
			}
		}
		g.runners++
		g.idleMu.Unlock()
		go g.run(&runner{calls: make(chan *call, 1)}, c)
		return
	}
	r := g.idle[n-1]
	g.idle[n-1] = nil
	g.idle = g.idle[:n-1]
	g.idleMu.Unlock()
	r.calls <- c // never blocks: buffered, and r was claimed by this call only
}

// run is a runner goroutine: it runs c, then the calls handed to it, and
// exits after workerIdle without work or when the guard closes.
func (g *guard) run(r *runner, c *call) {
	timer := time.NewTimer(workerIdle)
	defer timer.Stop()
	for {
		for c != nil {
			c = g.exec(r, c)
		}
		timer.Reset(workerIdle)
		select {
		case c = <-r.calls:
			continue
		case <-timer.C:
		case <-g.quit:
		}
		// Leave, unless a caller has just claimed this runner: its call
		// is on its way.
		if g.leave(r) {
			return
		}
		c = <-r.calls
	}
}

// leave takes r off the idle stack, reporting false when it is no longer
// there (a caller claimed it).
func (g *guard) leave(r *runner) bool {
	g.idleMu.Lock()
	defer g.idleMu.Unlock()
	for i, x := range g.idle {
		if x == r {
			// The runners idle longest are at the bottom, where one that
			// times out usually is.
			copy(g.idle[i:], g.idle[i+1:])
			g.idle[len(g.idle)-1] = nil
			g.idle = g.idle[:len(g.idle)-1]
			g.runners--
			return true
		}
	}
	return false
}

// exec runs c within Hold and hands the result to its caller, or recycles
// c when the caller has gone. The call counts as in flight until the store
// answers it, whether or not its caller still waits. Before the caller
// learns the answer, the runner takes the next queued call, which exec
// returns, or counts itself idle. A queued call whose caller has gone is
// not run.
func (g *guard) exec(r *runner, c *call) (next *call) {
	if c.state.Load() != callAbandoned {
		ctx, cancel := holdContext(g.opts.Hold)
		c.exec(ctx)
		cancel()
	}
	g.inflight.Add(-1)
	g.idleMu.Lock()
	select {
	case next = <-g.queue:
	default:
		g.idle = append(g.idle, r)
	}
	g.idleMu.Unlock()
	if c.state.CompareAndSwap(callRunning, callDone) {
		c.done <- struct{}{}
		return next
	}
	recycle(c)
	return next
}

// close stops the idle runners.
func (g *guard) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.quit:
	default:
		close(g.quit)
	}
}

// allow reports whether the breaker lets a call through, and whether that
// call is the half-open probe.
func (g *guard) allow() (probe, ok bool) {
	switch g.state.Load() {
	case metrics.BreakerClosed:
		return false, true
	case metrics.BreakerOpen:
		if time.Now().UnixNano() < g.openUntil.Load() {
			return false, false
		}
		if g.state.CompareAndSwap(metrics.BreakerOpen, metrics.BreakerHalfOpen) {
			metrics.SetStoreBreakerState(metrics.BreakerHalfOpen)
			return true, true
		}
	}
	// Half-open: the probe is in flight.
	return false, false
}

// success records a call the store answered.
func (g *guard) success(probe bool) {
	if probe {
		g.mu.Lock()
		g.failures.Store(0)
		g.state.Store(metrics.BreakerClosed)
		metrics.SetStoreBreakerState(metrics.BreakerClosed)
		g.mu.Unlock()
		return
	}
	// Read first: a healthy store writes nothing shared per call.
	if g.failures.Load() != 0 {
		g.failures.Store(0)
	}
}

// failure records a call that timed out or found the store unavailable.
func (g *guard) failure(probe bool, now time.Time) {
	if probe {
		g.trip(now)
		return
	}
	if g.state.Load() != metrics.BreakerClosed {
		// A call admitted before the breaker opened.
		return
	}
	n := g.failures.Add(1)
	if n == 1 {
		g.runStart.Store(now.UnixNano())
		return
	}
	if int(n) >= g.opts.BreakerFailures && now.UnixNano()-g.runStart.Load() >= int64(BreakerQuiet) {
		g.mu.Lock()
		if g.state.Load() == metrics.BreakerClosed {
			g.openLocked(now)
		}
		g.mu.Unlock()
	}
}

// trip opens the breaker (again) for BreakerCooldown.
func (g *guard) trip(now time.Time) {
	g.mu.Lock()
	g.openLocked(now)
	g.mu.Unlock()
}

func (g *guard) openLocked(now time.Time) {
	g.openUntil.Store(now.Add(g.opts.BreakerCooldown).UnixNano())
	if g.state.Swap(metrics.BreakerOpen) == metrics.BreakerClosed {
		g.opened.Inc()
	}
	g.failures.Store(0)
	metrics.SetStoreBreakerState(metrics.BreakerOpen)
}
