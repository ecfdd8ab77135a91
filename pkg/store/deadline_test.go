package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestDeadlineWithinTimeout(t *testing.T) {
	tests := []struct {
		name      string
		give      time.Duration
		wantSlack time.Duration
	}{
		{name: "default", give: 50 * time.Millisecond, wantSlack: time.Millisecond},
		{name: "long", give: time.Minute, wantSlack: time.Millisecond},
		{name: "short", give: 2 * time.Millisecond, wantSlack: 200 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tbl deadlineTable
			for range 50 {
				before := time.Now()
				ctx, cancel := tbl.context(tt.give)
				after := time.Now()
				d, ok := ctx.Deadline()
				cancel()
				if !ok {
					t.Fatal("context has no deadline")
				}
				if d.After(after.Add(tt.give)) {
					t.Fatalf("deadline %v after the call, longer than %v", d.Sub(after), tt.give)
				}
				if d.Before(before.Add(tt.give - tt.wantSlack)) {
					t.Fatalf("deadline %v before the call, want at least %v", d.Sub(before), tt.give-tt.wantSlack)
				}
			}
		})
	}
}

func TestDeadlineShared(t *testing.T) {
	var tbl deadlineTable
	// Two calls in the same millisecond share a context; a descheduled
	// test may straddle a replacement, so it gets a few tries.
	for range 100 {
		a, _ := tbl.context(time.Minute)
		b, _ := tbl.context(time.Minute)
		if a == b {
			return
		}
	}
	t.Fatal("no two back-to-back calls shared a context")
}

func TestDeadlineReplacedKeepsRunningCalls(t *testing.T) {
	var tbl deadlineTable
	const timeout = 100 * time.Millisecond
	first, _ := tbl.context(timeout)
	time.Sleep(5 * time.Millisecond)
	second, _ := tbl.context(timeout)
	if first == second {
		t.Fatal("a context 5ms old was handed out again with a 1ms slack")
	}
	if err := first.Err(); err != nil {
		t.Fatalf("replaced context ended early: %v", err)
	}
	<-first.Done()
	if err := first.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("replaced context ended with %v, want %v", err, context.DeadlineExceeded)
	}
	d, _ := first.Deadline()
	if now := time.Now(); now.Before(d) {
		t.Fatalf("replaced context ended %v before its deadline", d.Sub(now))
	}
}

func TestDeadlineTableFull(t *testing.T) {
	var tbl deadlineTable
	for i := range len(tbl.slots) {
		if _, cancel := tbl.context(time.Minute + time.Duration(i)); cancel == nil {
			t.Fatal("nil cancel function")
		}
	}
	a, cancelA := tbl.context(time.Hour)
	b, cancelB := tbl.context(time.Hour)
	defer cancelB()
	if a == b {
		t.Fatal("a timeout without a slot shared a context")
	}
	if d, ok := a.Deadline(); !ok || time.Until(d) > time.Hour {
		t.Fatalf("deadline %v, %v: want one at most an hour away", d, ok)
	}
	cancelA()
	if err := a.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("own context after cancel: %v, want %v", err, context.Canceled)
	}
	if err := b.Err(); err != nil {
		t.Fatalf("other context ended too: %v", err)
	}
}

func TestDeadlineConcurrent(t *testing.T) {
	var tbl deadlineTable
	timeouts := []time.Duration{20 * time.Millisecond, 30 * time.Millisecond}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			timeout := timeouts[g%len(timeouts)]
			for range 2000 {
				ctx, cancel := tbl.context(timeout)
				d, ok := ctx.Deadline()
				cancel()
				if left := time.Until(d); !ok || left > timeout {
					t.Errorf("deadline %v away, want at most %v", left, timeout)
					return
				}
			}
		})
	}
	wg.Wait()
	// Every context ends by its deadline; TestMain's leak check then finds
	// no timer goroutine left behind.
	for _, timeout := range timeouts {
		ctx, _ := tbl.context(timeout)
		<-ctx.Done()
	}
}

// TestMain fails the package when a test leaves goroutines behind, such as
// a context's timer still running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
