package redis_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
)

func benchStore(b *testing.B, cache bool) *redis.Store {
	srv := redistest.Start(b)
	s, err := redis.New(&config.Redis{Addrs: []string{srv.Addr()}, ClientSideCache: &cache})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkTake runs 16 takes per core at once over 1024 buckets, so
// rueidis pipelines them as it would for concurrent requests. In steady
// state a Take allocates nothing.
func BenchmarkTake(b *testing.B) {
	s := benchStore(b, false)
	r := store.Rate{Limit: 1 << 30, Period: time.Second, Burst: 1 << 30}
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = []byte("users|ip:10.0." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&255))
	}
	var seq atomic.Int64
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1)) * 97
		for pb.Next() {
			i++
			// The shared deadline the plugins use: a context per
			// millisecond, not per call.
			ctx, cancel := store.CallContext(time.Second)
			_, err := s.Take(ctx, keys[i&1023], r, 1)
			cancel()
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkIsRevokedCached checks a token against warm client-side cache
// entries: no round trip.
func BenchmarkIsRevokedCached(b *testing.B) {
	s := benchStore(b, true)
	jti, sub := []byte("0b7e2d3c-token"), []byte("user-1")
	ctx := context.Background()
	if _, err := s.IsRevoked(ctx, jti, sub, 0, time.Minute); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.IsRevoked(ctx, jti, sub, 0, time.Minute); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
