package memory_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
)

func BenchmarkTake(b *testing.B) {
	s := memory.New()
	defer s.Close()
	r := store.Rate{Limit: 1 << 30, Period: time.Second, Burst: 1 << 30}
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = []byte("route|ip:10.0." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&255))
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1)) * 97
		ctx := context.Background()
		for pb.Next() {
			i++
			if _, err := s.Take(ctx, keys[i&1023], r, 1); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkIsRevoked(b *testing.B) {
	s := memory.New()
	defer s.Close()
	ctx := context.Background()
	_ = s.RevokeAll(ctx, "user-1", time.Now(), time.Hour)
	jti, sub := []byte("0b7e2d3c-token"), []byte("user-1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = s.IsRevoked(ctx, jti, sub, 0, time.Second)
		}
	})
}
