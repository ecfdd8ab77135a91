package ipfilter

import (
	"testing"

	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

// BenchmarkHandle measures an allowed request against a small table.
func BenchmarkHandle(b *testing.B) {
	p := mustBuild(b, "allow: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, \"2001:db8::/32\"]\ndeny: [10.9.9.0/24]")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		st := reqctx.Acquire(&ctx)
		st.ClientIP = append(st.ClientIP[:0], "192.168.10.20"...)
		for pb.Next() {
			p.Handle(&ctx)
		}
	})
}
