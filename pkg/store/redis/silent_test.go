package redis_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
)

// TestSilentServer pauses the redis-server (SIGSTOP: connections stay
// open, nothing is answered) and checks both layers that handle it:
//
//   - the connection's liveness PING closes a silent connection within
//     1.5 × command_timeout, failing a call that would otherwise wait for
//     its (long) deadline;
//   - behind the guard, many concurrent calls with short deadlines each
//     return at their deadline, the calls held stay under the cap, the
//     breaker opens, and everything answers again once the server resumes.
func TestSilentServer(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: pauses redis-server for seconds")
	}
	srv := redistest.Start(t, "--save", "")
	const commandTimeout = 400 * time.Millisecond
	cfg := &config.Redis{
		Addrs:          []string{srv.Addr()},
		CommandTimeout: config.Duration(commandTimeout),
		DialTimeout:    config.Duration(300 * time.Millisecond),
		MaxInFlight:    64,
	}
	rs, err := redis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gs := redis.Guard(rs, cfg)
	t.Cleanup(func() { _ = gs.Close() })
	rate := store.Rate{Limit: 1000, Period: time.Second, Burst: 1000}
	take := func(s store.Store, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err := s.Take(ctx, []byte("silent"), rate, 1)
		return err
	}
	if err := take(gs, time.Second); err != nil {
		t.Fatal(err)
	}

	srv.Pause()
	start := time.Now()
	err = take(rs, 10*time.Second)
	took := time.Since(start)
	if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("call to the silent server: %v, want the connection closed (not the deadline)", err)
	}
	// 1.5 × command_timeout, plus a generous margin for a loaded machine.
	if bound := 3*commandTimeout/2 + 500*time.Millisecond; took > bound {
		t.Errorf("a silent connection was detected after %v, want within %v", took, bound)
	}
	t.Logf("silent connection closed %v after the call (command_timeout %v)", took.Round(time.Millisecond), commandTimeout)

	// Many concurrent calls, as under load: each returns at its deadline.
	const calls, deadline = 300, 50 * time.Millisecond
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst time.Duration
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			err := take(gs, deadline)
			d := time.Since(t0)
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("guarded call to the silent server: %v, want store.ErrUnavailable", err)
			}
			mu.Lock()
			worst = max(worst, d)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if worst > deadline+400*time.Millisecond {
		t.Errorf("a guarded call with a %v deadline took %v", deadline, worst)
	}
	if n := gs.InFlight(); n > int64(cfg.MaxInFlight) {
		t.Errorf("%d calls in flight, over the cap of %d", n, cfg.MaxInFlight)
	}
	time.Sleep(store.BreakerQuiet)
	for range 10 {
		_ = take(gs, deadline)
	}
	if s := gs.BreakerState(); s == metrics.BreakerClosed {
		t.Errorf("breaker still closed after repeated timeouts")
	}

	srv.Resume()
	waitUntil := time.Now().Add(10 * time.Second)
	for take(gs, time.Second) != nil {
		if time.Now().After(waitUntil) {
			t.Fatal("the guarded store does not answer 10s after the server resumed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := gs.BreakerState(); s != metrics.BreakerClosed {
		t.Errorf("breaker %d after a call succeeded, want closed", s)
	}
}
