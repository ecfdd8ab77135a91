package proxy

import (
	"math"
	"sync/atomic"
	"time"
)

// retryBudget counts, per second of a sliding window, the requests that
// could be retried and the retries made, and allows a retry only while the
// retries of the window stay within ratio times its requests plus a fixed
// allowance. It takes no lock and does not allocate: each per-second count
// is one word holding the second it belongs to (high 32 bits) and the count
// (low 32 bits), updated by compare-and-swap, so a slot reused for a new
// second starts from zero without a separate reset.
type retryBudget struct {
	ratio   float64
	min     float64 // retries allowed per window regardless of the ratio
	window  uint32  // seconds
	buckets []budgetBucket
}

type budgetBucket struct {
	requests atomic.Uint64
	retries  atomic.Uint64
}

func newRetryBudget(b RetryBudget) *retryBudget {
	w := uint32(b.Window / time.Second)
	if w == 0 {
		w = 1
	}
	return &retryBudget{
		ratio:   b.Ratio,
		min:     float64(b.MinPerSecond) * float64(w),
		window:  w,
		buckets: make([]budgetBucket, w),
	}
}

// second is the budget's clock: whole seconds, wrapping at 2^32.
func second(now time.Time) uint32 { return uint32(now.Unix()) }

// request records one retry-eligible request at sec.
func (b *retryBudget) request(sec uint32) {
	incr(&b.buckets[sec%b.window].requests, sec)
}

// allow reserves one retry at sec, and reports whether the budget had room
// for it. A refused reservation is taken back.
func (b *retryBudget) allow(sec uint32) bool {
	slot := &b.buckets[sec%b.window].retries
	incr(slot, sec)
	var requests, retries uint64
	for i := range b.buckets {
		requests += count(b.buckets[i].requests.Load(), sec, b.window)
		retries += count(b.buckets[i].retries.Load(), sec, b.window)
	}
	if float64(retries) <= b.ratio*float64(requests)+b.min {
		return true
	}
	decr(slot, sec)
	return false
}

// incr adds one to the count of a packed slot for second sec, restarting it
// when it holds an older second.
func incr(slot *atomic.Uint64, sec uint32) {
	for {
		old := slot.Load()
		next := uint64(sec)<<32 | 1
		if uint32(old>>32) == sec {
			if uint32(old) == math.MaxUint32 {
				return
			}
			next = old + 1
		}
		if slot.CompareAndSwap(old, next) {
			return
		}
	}
}

// decr takes one off the count of a slot that still holds second sec.
func decr(slot *atomic.Uint64, sec uint32) {
	for {
		old := slot.Load()
		if uint32(old>>32) != sec || uint32(old) == 0 {
			return
		}
		if slot.CompareAndSwap(old, old-1) {
			return
		}
	}
}

// count returns the count of a packed slot when its second lies within the
// window ending at sec, else 0.
func count(v uint64, sec, window uint32) uint64 {
	if sec-uint32(v>>32) >= window {
		return 0
	}
	return uint64(uint32(v))
}
