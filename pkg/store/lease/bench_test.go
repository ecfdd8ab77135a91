package lease

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/store"
)

// BenchmarkTake takes tokens for 1024 keys in parallel, against a limit
// far above the load: in steady state every take is a lease hit, with
// renewals ahead of need in the background.
func BenchmarkTake(b *testing.B) {
	srv := redistest.Start(b)
	st := connect(b, srv.Addr())
	l := newLimiter(b, st, Options{})
	r := store.Rate{Limit: 1000000000, Period: time.Second, Burst: 1000000000}
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = []byte("10.1." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&255))
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := int(seq.Add(1)) * 131
		for pb.Next() {
			i++
			if res, err := l.Take(ctx, keys[i&1023], r, 1); err != nil || !res.Allowed {
				b.Errorf("take: %+v %v", res, err)
				return
			}
		}
	})
}
