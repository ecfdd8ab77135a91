package loadgen

import (
	"math"
	"testing"
	"time"
)

func TestBucketBoundsContainValue(t *testing.T) {
	tests := []struct {
		name string
		give uint64
	}{
		{name: "zero", give: 0},
		{name: "last exact bucket", give: subCount - 1},
		{name: "first shared bucket", give: subCount},
		{name: "odd above 256", give: 511},
		{name: "power of two", give: 1 << 20},
		{name: "one millisecond", give: uint64(time.Millisecond)},
		{name: "arbitrary", give: 123456789},
		{name: "largest", give: maxValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := bucketIndex(tt.give)
			if i < 0 || i >= numBuckets {
				t.Fatalf("index %d out of range [0,%d)", i, numBuckets)
			}
			lo, hi := bucketBounds(i)
			if tt.give < lo || tt.give > hi {
				t.Fatalf("value %d outside its bucket [%d,%d]", tt.give, lo, hi)
			}
			if width := hi - lo + 1; float64(width) > float64(lo)/subHalf+1 {
				t.Fatalf("bucket [%d,%d] wider than 1/%d of its values", lo, hi, subHalf)
			}
		})
	}
}

func TestBucketsAreContiguous(t *testing.T) {
	_, prevHi := bucketBounds(0)
	for i := 1; i < numBuckets; i++ {
		lo, hi := bucketBounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		prevHi = hi
	}
	if prevHi != maxValue {
		t.Fatalf("last bucket ends at %d, want %d", prevHi, maxValue)
	}
}

func TestQuantiles(t *testing.T) {
	h := NewHistogram()
	// 1..10000 µs, uniform.
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	tests := []struct {
		name string
		give float64
		want time.Duration
	}{
		{name: "p50", give: 0.50, want: 5000 * time.Microsecond},
		{name: "p90", give: 0.90, want: 9000 * time.Microsecond},
		{name: "p99", give: 0.99, want: 9900 * time.Microsecond},
		{name: "p99.9", give: 0.999, want: 9990 * time.Microsecond},
		{name: "max", give: 1, want: 10000 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := h.Quantile(tt.give)
			if got < tt.want || float64(got-tt.want) > float64(tt.want)/subHalf {
				t.Fatalf("Quantile(%v) = %v, want %v (+%.1f%%)", tt.give, got, tt.want, 100.0/subHalf)
			}
		})
	}
	if got, want := h.Mean(), 5000500*time.Nanosecond; got != want {
		t.Fatalf("Mean = %v, want %v", got, want)
	}
	if h.Min() != time.Microsecond || h.Max() != 10*time.Millisecond || h.Count() != 10000 {
		t.Fatalf("min %v max %v count %d", h.Min(), h.Max(), h.Count())
	}
}

func TestMerge(t *testing.T) {
	a, b := NewHistogram(), NewHistogram()
	for i := 0; i < 90; i++ {
		a.Record(time.Millisecond)
	}
	for i := 0; i < 10; i++ {
		b.Record(100 * time.Millisecond)
	}
	a.Merge(b)
	a.Merge(NewHistogram())
	if a.Count() != 100 {
		t.Fatalf("count %d, want 100", a.Count())
	}
	if p := a.Quantile(0.90); p > time.Millisecond+time.Millisecond/subHalf {
		t.Fatalf("p90 %v, want about 1ms", p)
	}
	if p := a.Quantile(0.91); p < 100*time.Millisecond {
		t.Fatalf("p91 %v, want 100ms", p)
	}
	s := a.Summary()
	if s.Max != 100 || s.Min != 1 || math.Abs(s.Mean-10.9) > 1e-9 {
		t.Fatalf("summary %+v", s)
	}
}

func TestEmptyHistogram(t *testing.T) {
	h := NewHistogram()
	if s := h.Summary(); s != (Percentiles{}) {
		t.Fatalf("empty summary %+v, want zeros", s)
	}
}

func TestRecordClampsAndNegatives(t *testing.T) {
	h := NewHistogram()
	h.Record(-time.Second)
	h.Record(time.Hour)
	if h.Min() != 0 {
		t.Fatalf("min %v, want 0", h.Min())
	}
	if got := h.Quantile(1); got != time.Hour {
		t.Fatalf("max quantile %v, want the recorded maximum", got)
	}
}
