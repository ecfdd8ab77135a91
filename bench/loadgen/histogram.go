package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// The histogram is log-bucketed in the manner of HdrHistogram: values below
// 256 ns have a bucket each; above, every power of two is split into 128
// equal sub-buckets, so a bucket's width is less than 1/128 of its values
// (three significant digits, better than 0.8 %). Values above about 68 s
// are clamped into the last bucket.
const (
	subBits    = 8
	subCount   = 1 << subBits // 256
	subHalf    = subCount / 2 // 128
	maxShift   = 28
	numBuckets = subCount + maxShift*subHalf
	maxValue   = uint64(1)<<(subBits+maxShift) - 1
)

// Histogram records latencies in nanoseconds. The zero value is not usable:
// call NewHistogram. A Histogram is not safe for concurrent use; give each
// goroutine its own and Merge them.
type Histogram struct {
	counts []uint64
	total  uint64
	sum    float64
	min    uint64
	max    uint64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, numBuckets), min: math.MaxUint64}
}

func bucketIndex(v uint64) int {
	if v < subCount {
		return int(v)
	}
	if v > maxValue {
		v = maxValue
	}
	shift := bits.Len64(v) - subBits
	return subCount + (shift-1)*subHalf + int(v>>uint(shift)) - subHalf
}

// bucketBounds returns the lowest and highest value bucket i holds.
func bucketBounds(i int) (lo, hi uint64) {
	if i < subCount {
		return uint64(i), uint64(i)
	}
	j := i - subCount
	shift := uint(j/subHalf + 1)
	top := uint64(j%subHalf + subHalf)
	lo = top << shift
	return lo, lo + (1 << shift) - 1
}

// Record adds one value.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketIndex(v)]++
	h.total++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Min returns the smallest value recorded (0 when empty).
func (h *Histogram) Min() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Max returns the largest value recorded.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the exact mean of the recorded values.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.total))
}

// Quantile returns the value at quantile q (0 < q ≤ 1): the highest value
// equivalent to the bucket holding the ceil(q·count)-th smallest value,
// never above the largest value recorded (the largest itself for values
// beyond the range). It returns 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.total {
		rank = h.total
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			if i == numBuckets-1 {
				return time.Duration(h.max) // clamped values
			}
			_, hi := bucketBounds(i)
			return time.Duration(min(hi, h.max))
		}
	}
	return time.Duration(h.max)
}

// Percentiles summarises a histogram in milliseconds.
type Percentiles struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"min_ms"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Summary returns the usual percentiles of h.
func (h *Histogram) Summary() Percentiles {
	return Percentiles{
		Count: h.total,
		Min:   ms(h.Min()),
		Mean:  ms(h.Mean()),
		P50:   ms(h.Quantile(0.50)),
		P90:   ms(h.Quantile(0.90)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(h.Max()),
	}
}
