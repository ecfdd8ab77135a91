package metrics

import (
	"testing"
	"time"
)

func BenchmarkRouteObserve(b *testing.B) {
	r := ForRoute("bench-observe")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Observe(0, 200, 3*time.Millisecond)
		}
	})
}

func BenchmarkRouteObserveWithSize(b *testing.B) {
	r := ForRoute("bench-observe-size")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Observe(0, 200, 3*time.Millisecond)
			r.ObserveResponseSize(2048)
		}
	})
}

func BenchmarkUpstreamObserveAttempt(b *testing.B) {
	u := ForUpstream("bench-attempt")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u.ObserveAttempt(200, false)
		}
	})
}
