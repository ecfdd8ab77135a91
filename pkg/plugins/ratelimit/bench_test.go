package ratelimit

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/valyala/fasthttp"
)

// benchHandle runs requests from 1024 client IPs through l in parallel.
func benchHandle(b *testing.B, l *Limiter) {
	ips := make([]string, 1024)
	for i := range ips {
		ips[i] = "10.1." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&255)
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/v1/users/1")
		i := int(seq.Add(1)) * 131
		for pb.Next() {
			i++
			s := reqctx.Acquire(&ctx)
			s.ClientIP = append(s.ClientIP[:0], ips[i&1023]...)
			if l.Handle(&ctx) != plugins.Next {
				b.Error("rejected")
				return
			}
			ctx.Response.Reset()
			l.OnResponse(&ctx)
			ctx.ResetUserValues()
		}
	})
}

func BenchmarkHandleMemory(b *testing.B) {
	st := memory.New()
	defer st.Close()
	benchHandle(b, build(b, "users", "key: ip\nlimit: 1000000000\nperiod: 1s", st))
}

// BenchmarkHandleRedis runs 16 requests per core at once, as concurrent
// connections would, so rueidis pipelines them.
func BenchmarkHandleRedis(b *testing.B) {
	_, st := newRedis(b)
	b.SetParallelism(16)
	benchHandle(b, build(b, "users", "key: ip\nlimit: 1000000000\nperiod: 1s", st))
}

// BenchmarkHandleRedisLease is BenchmarkHandleRedis with sync: lease: in
// steady state requests take tokens from local leases, renewed ahead of
// need in the background.
func BenchmarkHandleRedisLease(b *testing.B) {
	_, st := newRedis(b)
	b.SetParallelism(16)
	benchHandle(b, build(b, "users", "key: ip\nlimit: 1000000000\nperiod: 1s\nsync: lease", st))
}
