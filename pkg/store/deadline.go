package store

import (
	"context"
	"sync"
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
// the slot is free and never changes once set. Its contexts not yet past
// their deadline wait in pending, ended by one timer per slot.
type deadlineSlot struct {
	timeout atomic.Int64
	cur     atomic.Pointer[sharedDeadline]

	mu      sync.Mutex
	pending []*sharedDeadline
	timer   *time.Timer // nil until the slot's first context
	next    time.Time   // when timer fires, while pending is not empty
}

// sharedDeadline is a context handed to every call of one timeout until it
// is too close to its deadline. It is never cancelled early: calls still
// running keep their full deadline. It ends at its deadline, by its slot's
// timer, with context.DeadlineExceeded; it holds no values. One costs two
// allocations (itself and its channel) where context.WithDeadline and the
// AfterFunc that would release it take about ten.
type sharedDeadline struct {
	deadline time.Time
	done     chan struct{}
}

var _ context.Context = (*sharedDeadline)(nil)

// Deadline implements context.Context.
func (c *sharedDeadline) Deadline() (time.Time, bool) { return c.deadline, true }

// Done implements context.Context.
func (c *sharedDeadline) Done() <-chan struct{} { return c.done }

// Err implements context.Context.
func (c *sharedDeadline) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// Value implements context.Context: a shared context holds no values.
func (*sharedDeadline) Value(any) any { return nil }

func (c *sharedDeadline) String() string {
	return "store.CallContext.WithDeadline(" + c.deadline.String() + ")"
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
			return cur, keep
		}
		next := &sharedDeadline{deadline: now.Add(timeout), done: make(chan struct{})}
		if !s.cur.CompareAndSwap(cur, next) {
			// Another call replaced it first; this one was never handed out.
			now = time.Now()
			continue
		}
		s.schedule(next)
		return next, keep
	}
}

// schedule makes the slot's timer end c at its deadline.
func (s *deadlineSlot) schedule(c *sharedDeadline) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = append(s.pending, c)
	switch {
	case s.timer == nil:
		s.timer = time.AfterFunc(time.Until(c.deadline), s.expire)
	case len(s.pending) > 1 && !c.deadline.Before(s.next):
		// The timer fires sooner, for an older context.
		return
	default:
		s.timer.Reset(time.Until(c.deadline))
	}
	s.next = c.deadline
}

// expire is the slot's timer: it ends the contexts whose deadline has
// passed and sets the timer for the earliest one left.
func (s *deadlineSlot) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	left := s.pending[:0]
	var next time.Time
	for _, c := range s.pending {
		if !now.Before(c.deadline) {
			close(c.done)
			continue
		}
		left = append(left, c)
		if next.IsZero() || c.deadline.Before(next) {
			next = c.deadline
		}
	}
	clear(s.pending[len(left):])
	s.pending = left
	if len(left) > 0 {
		s.next = next
		s.timer.Reset(next.Sub(now))
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
