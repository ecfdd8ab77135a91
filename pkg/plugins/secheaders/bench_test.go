package secheaders

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkOnResponse measures decorating one response with every header.
func BenchmarkOnResponse(b *testing.B) {
	p := mustBuild(b, "hsts: {include_subdomains: true}\ncsp: \"default-src 'self'\"")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.Set("X-Forwarded-Proto", "https")
		for pb.Next() {
			ctx.Response.Reset()
			p.Handle(&ctx)
			p.OnResponse(&ctx)
		}
	})
}
