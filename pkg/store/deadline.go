package store

import (
	"context"
	"sync/atomic"
	"time"
)

// deadlineSlack is how much sooner than store_timeout a store call's
// deadline may fall: the calls of about one millisecond share a context
// instead of each allocating its own. A timeout under 10 ms gets a tenth of
// itself instead.
const deadlineSlack = time.Millisecond

// deadlines holds the shared store-call contexts of the process; holds
// the coarser ones that bound calls after their callers gave up.
var deadlines, holds deadlineTable

// CallContext returns the context for one store call bounded by timeout,
// and the function to call when the call is over. Calls made within about a
// millisecond of each other share one context, so the hot path does not
// allocate a context and a timer per request: the deadline lies between
// timeout − min(1ms, timeout/10) and timeout from now, never later.
func CallContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	return deadlines.context(timeout)
}

// holdContext returns a shared context whose deadline lies between
// 0.9 × timeout and timeout from now: for bounds that need no precision,
// so that a context is made about ten times per timeout, not per
// millisecond.
func holdContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	return holds.contextSlack(timeout, timeout/10)
}

// deadlineTable hands out contexts for store calls, one shared context per
// timeout at a time, with a deadline between timeout − slack and timeout
// from now. It serves up to len(slots) distinct timeouts; calls with any
// other timeout get a context of their own.
type deadlineTable struct {
	slots [16]deadlineSlot
}

// deadlineSlot holds the current context of one timeout; timeout is 0 while
// the slot is free and never changes once set.
type deadlineSlot struct {
	timeout atomic.Int64
	cur     atomic.Pointer[sharedDeadline]
}

// sharedDeadline is a context handed to every call of one timeout until it
// is too close to its deadline. It is never cancelled early: calls still
// running keep their full deadline.
type sharedDeadline struct {
	ctx      context.Context
	deadline time.Time
}

// keep is the cancel function of a shared context: the calls that share it
// do not end it.
func keep() {}

// context returns a context whose deadline lies between timeout − slack
// and timeout from now, slack being min(1ms, timeout/10), and the function
// to call when the store call is over.
func (t *deadlineTable) context(timeout time.Duration) (context.Context, context.CancelFunc) {
	return t.contextSlack(timeout, min(deadlineSlack, timeout/10))
}

// contextSlack is context with the given slack. A table serves one slack
// per timeout.
func (t *deadlineTable) contextSlack(timeout, slack time.Duration) (context.Context, context.CancelFunc) {
	s := t.slot(timeout)
	if s == nil {
		return context.WithTimeout(context.Background(), timeout)
	}
	now := time.Now()
	least := timeout - slack
	for {
		cur := s.cur.Load()
		if cur != nil && cur.deadline.Sub(now) >= least {
			return cur.ctx, keep
		}
		d := now.Add(timeout)
		ctx, cancel := context.WithDeadline(context.Background(), d)
		next := &sharedDeadline{ctx: ctx, deadline: d}
		if !s.cur.CompareAndSwap(cur, next) {
			// Another call replaced it first; this one was never handed out.
			cancel()
			now = time.Now()
			continue
		}
		// The context ends itself at its deadline (DeadlineExceeded);
		// cancel then only releases it. It is not called sooner: calls may
		// still be using the context after the next one replaces it.
		context.AfterFunc(ctx, cancel)
		return ctx, keep
	}
}

// slot returns the slot of timeout, claiming a free one, or nil when all
// are taken by other timeouts.
func (t *deadlineTable) slot(timeout time.Duration) *deadlineSlot {
	if timeout <= 0 {
		return nil
	}
	for i := range t.slots {
		s := &t.slots[i]
		v := s.timeout.Load()
		if v == 0 && !s.timeout.CompareAndSwap(0, int64(timeout)) {
			v = s.timeout.Load()
		} else if v == 0 {
			return s
		}
		if v == int64(timeout) {
			return s
		}
	}
	return nil
}
