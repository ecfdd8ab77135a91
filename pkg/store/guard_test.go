package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/bolt"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
)

// gateStore is an in-process store whose calls the test holds or fails:
// while held, a call ignores its context (as a client library's full
// queue does) until the test opens the gate.
type gateStore struct {
	*memory.Store
	mu    sync.Mutex
	gate  chan struct{} // nil: calls pass
	fail  atomic.Bool
	calls atomic.Int64
	pings atomic.Int64
}

var errDown = fmt.Errorf("test store: %w: connection refused", store.ErrUnavailable)

func newGateStore() *gateStore { return &gateStore{Store: memory.New()} }

// hold makes the next calls wait until release.
func (s *gateStore) hold() {
	s.mu.Lock()
	s.gate = make(chan struct{})
	s.mu.Unlock()
}

func (s *gateStore) release() {
	s.mu.Lock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
	s.mu.Unlock()
}

func (s *gateStore) pass() error {
	s.calls.Add(1)
	s.mu.Lock()
	g := s.gate
	s.mu.Unlock()
	if g != nil {
		<-g
	}
	if s.fail.Load() {
		return errDown
	}
	return nil
}

func (s *gateStore) Take(ctx context.Context, key []byte, r store.Rate, cost int64) (store.Result, error) {
	if err := s.pass(); err != nil {
		return store.Result{}, err
	}
	return s.Store.Take(ctx, key, r, cost)
}

// IsRevoked fails for the jti "bad", like a key on a cluster shard that is
// down.
func (s *gateStore) IsRevoked(ctx context.Context, jti, sub []byte, iat int64, maxStale time.Duration) (bool, error) {
	if string(jti) == "bad" {
		s.calls.Add(1)
		return false, errDown
	}
	if err := s.pass(); err != nil {
		return false, err
	}
	return s.Store.IsRevoked(ctx, jti, sub, iat, maxStale)
}

func (s *gateStore) Ping(ctx context.Context) error {
	s.pings.Add(1)
	return s.pass()
}

var rate = store.Rate{Limit: 1000000, Period: time.Minute, Burst: 1000000}

func take(s store.Store, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := s.Take(ctx, []byte("k"), rate, 1)
	return err
}

// fire runs n calls of f at once and returns their errors and the longest
// time one took.
func fire(n int, f func() error) ([]error, time.Duration) {
	errs := make([]error, n)
	took := make([]time.Duration, n)
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			t0 := time.Now()
			errs[i] = f()
			took[i] = time.Since(t0)
		}()
	}
	start.Done()
	wg.Wait()
	var worst time.Duration
	for _, d := range took {
		worst = max(worst, d)
	}
	return errs, worst
}

func count(errs []error, target error) int {
	n := 0
	for _, err := range errs {
		if target == nil && err == nil || target != nil && errors.Is(err, target) {
			n++
		}
	}
	return n
}

// TestGuardCapIsNonBlocking: with the store holding every call, the first
// MaxInFlight concurrent calls are admitted and the rest fail at once
// with ErrOverloaded; the admitted ones return at their deadline and stay
// counted until the store answers them.
func TestGuardCapIsNonBlocking(t *testing.T) {
	inner := newGateStore()
	g := store.NewGuarded(inner, nil, store.GuardOptions{MaxInFlight: 20, BreakerFailures: 1000})
	defer g.Close()
	inner.hold()
	errs, worst := fire(60, func() error { return take(g, 300*time.Millisecond) })
	if n := count(errs, store.ErrOverloaded); n != 40 {
		t.Errorf("%d calls over the cap of 20 (of 60), want 40", n)
	}
	if n := count(errs, store.ErrTimeout); n != 20 {
		t.Errorf("%d calls timed out, want the 20 admitted", n)
	}
	if worst > 300*time.Millisecond+500*time.Millisecond {
		t.Errorf("a caller waited %v with a 300ms deadline", worst)
	}
	for _, err := range errs {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("error %v does not wrap store.ErrUnavailable", err)
		}
	}
	// The store still holds the 20: the cap still applies.
	if n := g.InFlight(); n != 20 {
		t.Errorf("in flight %d while the store holds 20 calls", n)
	}
	if err := take(g, time.Second); !errors.Is(err, store.ErrOverloaded) {
		t.Errorf("call while the store holds the cap: %v, want ErrOverloaded", err)
	}
	inner.release()
	waitFor(t, func() bool { return g.InFlight() == 0 }, "in-flight calls to be answered")
	errs, _ = fire(20, func() error { return take(g, time.Second) })
	if n := count(errs, nil); n != 20 {
		t.Errorf("%d of 20 calls succeeded after the store answered: %v", n, errs)
	}
}

// TestGuardCallerReturnsAtDeadline: a call the store never answers returns
// at the caller's deadline, and the runner holding it is released when the
// store finally answers.
func TestGuardCallerReturnsAtDeadline(t *testing.T) {
	inner := newGateStore()
	g := store.NewGuarded(inner, nil, store.GuardOptions{})
	defer g.Close()
	inner.hold()
	start := time.Now()
	ctx, cancel := store.CallContext(50 * time.Millisecond)
	revoked, err := g.IsRevoked(ctx, []byte("jti"), []byte("sub"), 1, 0)
	cancel()
	took := time.Since(start)
	if !errors.Is(err, store.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || revoked {
		t.Fatalf("IsRevoked = %v, %v; want ErrTimeout", revoked, err)
	}
	if took < 45*time.Millisecond || took > 500*time.Millisecond {
		t.Errorf("returned after %v with a 50ms deadline", took)
	}
	if g.InFlight() != 1 {
		t.Errorf("in flight %d, want the 1 call the store holds", g.InFlight())
	}
	inner.release()
	waitFor(t, func() bool { return g.InFlight() == 0 }, "the held call to be answered")
}

// TestGuardBreaker walks the breaker through its states with concurrent
// callers: closed → open after repeated failures → half-open with a single
// probe → open again on a failed probe → closed on a successful one.
func TestGuardBreaker(t *testing.T) {
	const cooldown = 300 * time.Millisecond
	inner := newGateStore()
	g := store.NewGuarded(inner, nil, store.GuardOptions{BreakerFailures: 5, BreakerCooldown: cooldown})
	defer g.Close()

	// Closed: failures pass through to the store until the run is long
	// enough (BreakerQuiet) and has BreakerFailures failures.
	inner.fail.Store(true)
	errs, _ := fire(10, func() error { return take(g, time.Second) })
	if n := count(errs, errDown); n != 10 {
		t.Fatalf("%d of 10 calls reached the failing store, want all: %v", n, errs)
	}
	if s := g.BreakerState(); s != metrics.BreakerClosed {
		t.Fatalf("breaker %d after a burst shorter than BreakerQuiet, want closed", s)
	}
	time.Sleep(store.BreakerQuiet)
	_ = take(g, time.Second)
	if s := g.BreakerState(); s != metrics.BreakerOpen {
		t.Fatalf("breaker %d after failures spanning BreakerQuiet, want open", s)
	}

	// Open: calls fail at once without reaching the store.
	before := inner.calls.Load()
	errs, worst := fire(50, func() error { return take(g, time.Second) })
	if n := count(errs, store.ErrBreakerOpen); n != 50 {
		t.Errorf("%d of 50 calls failed fast while open", n)
	}
	if inner.calls.Load() != before {
		t.Errorf("%d calls reached the store while the breaker was open", inner.calls.Load()-before)
	}
	if worst > 200*time.Millisecond {
		t.Errorf("a call took %v while the breaker was open", worst)
	}

	// Half-open: after the cooldown exactly one of many concurrent calls
	// is the probe; it times out, which opens the breaker again.
	time.Sleep(cooldown)
	inner.hold()
	before = inner.calls.Load()
	errs, _ = fire(50, func() error { return take(g, 200*time.Millisecond) })
	if n := inner.calls.Load() - before; n != 1 {
		t.Errorf("%d calls reached the store half-open, want the one probe", n)
	}
	if count(errs, store.ErrTimeout) != 1 || count(errs, store.ErrBreakerOpen) != 49 {
		t.Errorf("half-open: want 1 probe timing out and 49 failing fast: %v", errs)
	}
	if s := g.BreakerState(); s != metrics.BreakerOpen {
		t.Errorf("breaker %d after a failed probe, want open", s)
	}
	inner.release()

	// A successful probe closes it.
	inner.fail.Store(false)
	time.Sleep(cooldown)
	if err := take(g, time.Second); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if s := g.BreakerState(); s != metrics.BreakerClosed {
		t.Fatalf("breaker %d after a successful probe, want closed", s)
	}
	errs, _ = fire(50, func() error { return take(g, time.Second) })
	if n := count(errs, nil); n != 50 {
		t.Errorf("%d of 50 calls succeeded once closed: %v", n, errs)
	}
}

// TestGuardBreakerStaysClosedWhileSomeSucceed: a store that answers some
// calls (a cluster with one shard down) keeps the breaker closed however
// many calls fail.
func TestGuardBreakerStaysClosedWhileSomeSucceed(t *testing.T) {
	inner := newGateStore()
	g := store.NewGuarded(inner, nil, store.GuardOptions{BreakerFailures: 3})
	defer g.Close()
	var wg sync.WaitGroup
	stop := time.Now().Add(3 * store.BreakerQuiet)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				key := []byte("ok")
				if w%2 == 0 {
					key = []byte("bad")
				}
				_, err := g.IsRevoked(ctx, key, nil, 0, 0)
				cancel()
				if errors.Is(err, store.ErrBreakerOpen) {
					t.Error("breaker opened while half the calls succeed")
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
}

// TestGuardPingIsShared: concurrent pings of a silent store make one call
// to it and each returns at its own deadline.
func TestGuardPingIsShared(t *testing.T) {
	inner := newGateStore()
	g := store.NewGuarded(inner, nil, store.GuardOptions{})
	defer g.Close()
	inner.hold()
	errs, worst := fire(100, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return g.Ping(ctx)
	})
	if n := count(errs, store.ErrTimeout); n != 100 {
		t.Errorf("%d of 100 pings timed out", n)
	}
	if worst > 700*time.Millisecond {
		t.Errorf("a ping took %v with a 200ms deadline", worst)
	}
	if n := inner.pings.Load(); n != 1 {
		t.Errorf("%d pings reached the store, want 1 shared", n)
	}
	inner.release()
	waitFor(t, func() bool { return g.InFlight() == 0 }, "the ping to be answered")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := g.Ping(ctx); err != nil {
		t.Errorf("ping after the store answers: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gateAuth is an embedded auth store whose UserByEmail waits for the gate
// of a gateStore.
type gateAuth struct {
	*bolt.Store
	gate *gateStore
}

func (a gateAuth) UserByEmail(ctx context.Context, email string) (*store.User, error) {
	if err := a.gate.pass(); err != nil {
		return nil, err
	}
	return a.Store.UserByEmail(ctx, email)
}

// TestGuardAuthStore: auth calls share the guard; one that times out
// returns at its deadline and its late result is dropped.
func TestGuardAuthStore(t *testing.T) {
	b, err := bolt.Open(filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	inner := newGateStore()
	g := store.NewGuarded(inner, gateAuth{b, inner}, store.GuardOptions{})
	defer g.Close()
	users := g.Auth()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	u := &store.User{ID: "u1", Email: "a@example.com", Role: "user", PasswordHash: []byte("h"), CreatedAt: time.Now()}
	if err := users.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	inner.hold()
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	got, err := users.UserByEmail(short, u.Email)
	cancelShort()
	if !errors.Is(err, store.ErrTimeout) || got != nil {
		t.Fatalf("UserByEmail on a held store = %v, %v; want nil, ErrTimeout", got, err)
	}
	inner.release()
	waitFor(t, func() bool { return g.InFlight() == 0 }, "the held call to be answered")
	if got, err = users.UserByEmail(ctx, u.Email); err != nil || got.ID != u.ID {
		t.Fatalf("UserByEmail = %+v, %v", got, err)
	}
	if _, err := users.UserByEmail(ctx, "nobody@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}
}

// answeringStore is a gateStore that also answers revocation checks from
// memory (store.CachedRevocations), as store/redis does with client-side
// caching: every check it is asked is "not revoked" from memory.
type answeringStore struct {
	*gateStore
	asked atomic.Int64
}

func (s *answeringStore) CachedRevoked(jti, sub []byte, iat int64, maxStale time.Duration) (revoked, ok bool) {
	s.asked.Add(1)
	return false, true
}

// TestGuardCachedRevoked: an answer from the store's memory skips the
// guard (no runner, no in-flight slot, no deadline) while the breaker is
// closed; while it is open, or half-open, checks fail or probe exactly as
// without the memory.
func TestGuardCachedRevoked(t *testing.T) {
	const cooldown = 300 * time.Millisecond
	inner := &answeringStore{gateStore: newGateStore()}
	g := store.NewGuarded(inner, nil, store.GuardOptions{MaxInFlight: 1, BreakerFailures: 2, BreakerCooldown: cooldown})
	defer g.Close()

	// Closed: answered from memory even with the cap taken by a held call
	// and an expired context.
	inner.hold()
	held := make(chan error, 1)
	go func() { held <- take(g, time.Second) }()
	waitFor(t, func() bool { return g.InFlight() == 1 }, "the held call in flight")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := inner.calls.Load()
	if revoked, err := g.IsRevoked(ctx, []byte("j"), []byte("u"), 1, time.Second); err != nil || revoked {
		t.Fatalf("IsRevoked from memory = %v, %v; want false, nil", revoked, err)
	}
	if revoked, ok := g.CachedRevoked([]byte("j"), []byte("u"), 1, time.Second); !ok || revoked {
		t.Fatalf("CachedRevoked = %v, %v; want false, true", revoked, ok)
	}
	if inner.calls.Load() != before || inner.asked.Load() != 2 {
		t.Fatalf("store calls %d, memory answers %d; want 0 and 2", inner.calls.Load()-before, inner.asked.Load())
	}
	inner.release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}

	// Open: nothing from memory; checks fail fast like every call.
	inner.fail.Store(true)
	for range 3 {
		_ = take(g, time.Second)
		time.Sleep(store.BreakerQuiet / 2)
	}
	_ = take(g, time.Second)
	if s := g.BreakerState(); s != metrics.BreakerOpen {
		t.Fatalf("breaker %d, want open", s)
	}
	asked := inner.asked.Load()
	if _, ok := g.CachedRevoked([]byte("j"), []byte("u"), 1, time.Second); ok {
		t.Fatal("CachedRevoked answered while the breaker was open")
	}
	if _, err := g.IsRevoked(context.Background(), []byte("j"), []byte("u"), 1, time.Second); !errors.Is(err, store.ErrBreakerOpen) {
		t.Fatalf("IsRevoked while open: %v, want ErrBreakerOpen", err)
	}
	if inner.asked.Load() != asked {
		t.Fatal("the store's memory was asked while the breaker was open")
	}

	// Half-open: the check is the probe, a real call.
	inner.fail.Store(false)
	time.Sleep(cooldown)
	before = inner.calls.Load()
	if _, err := g.IsRevoked(context.Background(), []byte("j"), []byte("u"), 1, time.Second); err != nil {
		t.Fatal(err)
	}
	if inner.calls.Load() != before+1 || g.BreakerState() != metrics.BreakerClosed {
		t.Fatalf("half-open check: %d store calls, breaker %d; want the probe and closed", inner.calls.Load()-before, g.BreakerState())
	}
}

// TestGuardRunnersShrinkUnderSteadyLoad: the runners a burst started go
// away once steady traffic needs fewer, even while calls keep coming (each
// call goes to the runner idle the shortest, so the others reach their
// idle timeout).
func TestGuardRunnersShrinkUnderSteadyLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the runners' idle timeout")
	}
	inner := newGateStore()
	g := store.NewGuarded(inner, nil, store.GuardOptions{})
	defer g.Close()
	before := runtime.NumGoroutine()
	const burst = 64
	inner.hold()
	var wg sync.WaitGroup
	for range burst {
		wg.Go(func() { _ = take(g, 10*time.Second) })
	}
	waitFor(t, func() bool { return g.InFlight() == burst }, "the burst in flight")
	inner.release()
	wg.Wait()
	// Goroutines of earlier tests may end meanwhile, so the count is a
	// lower bound with some slack: the burst must have started most of
	// its runners for the rest of the test to mean anything.
	if n := runtime.NumGoroutine() - before; n < burst*3/4 {
		t.Fatalf("%d runners after a burst of %d calls", n, burst)
	}
	// One call every few milliseconds for longer than the idle timeout.
	deadline := time.Now().Add(7 * time.Second)
	for time.Now().Before(deadline) {
		if err := take(g, time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine() - before; n > 4 {
		t.Fatalf("%d runners left under one call at a time, want at most a few", n)
	}
}

// TestGuardRunnersAreCapped: with the store holding every call, a burst
// of more calls than MaxRunners starts MaxRunners goroutines; the rest
// wait in the queue, count as in flight, and return at their callers'
// deadline. Once the store answers again, the queued calls whose callers
// still wait are run and answered, and those whose callers left are not.
func TestGuardRunnersAreCapped(t *testing.T) {
	inner := newGateStore()
	const runners, burst = 4, 40
	g := store.NewGuarded(inner, nil, store.GuardOptions{MaxRunners: runners})
	defer g.Close()
	before := runtime.NumGoroutine()

	// Callers that give up while every runner is held.
	inner.hold()
	errs, worst := fire(burst, func() error { return take(g, 50*time.Millisecond) })
	if n := count(errs, store.ErrTimeout); n != burst {
		t.Fatalf("%d of %d calls timed out while the store held them, want all", n, burst)
	}
	if worst > 500*time.Millisecond {
		t.Errorf("a queued caller returned after %v with a 50ms deadline", worst)
	}
	if n := g.InFlight(); n != burst {
		t.Errorf("in flight %d, want the %d calls held or queued", n, burst)
	}
	// The runners and, at most, goroutines of earlier tests ending. fire's
	// callers have returned, but a goroutine is counted until it has
	// exited, after its last deferred call: allow them a moment, while the
	// runners stay held.
	settle := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine()-before > runners && time.Now().Before(settle) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine() - before; n > runners {
		t.Errorf("%d goroutines for %d held calls, want at most MaxRunners = %d", n, burst, runners)
	}
	inner.release()
	waitFor(t, func() bool { return g.InFlight() == 0 }, "the held and queued calls to end")
	// The runners held calls; the abandoned queued ones were not run.
	if n := inner.calls.Load(); n != runners {
		t.Errorf("the store saw %d calls, want the %d the runners held", n, runners)
	}

	// Callers that wait: every call is answered through the queue.
	inner.calls.Store(0)
	inner.hold()
	done := make(chan []error)
	go func() {
		errs, _ := fire(burst, func() error { return take(g, 10*time.Second) })
		done <- errs
	}()
	waitFor(t, func() bool { return g.InFlight() == burst }, "the burst in flight")
	inner.release()
	errs = <-done
	if n := count(errs, nil); n != burst {
		t.Fatalf("%d of %d calls answered, want all: %v", n, burst, errs)
	}
	if n := inner.calls.Load(); n != burst {
		t.Errorf("the store saw %d calls, want %d", n, burst)
	}
}
