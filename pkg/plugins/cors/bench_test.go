package cors

import (
	"testing"

	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

// BenchmarkHandle measures Handle plus OnResponse for a simple request and
// for a preflight from an allowed origin.
func BenchmarkHandle(b *testing.B) {
	p := mustBuild(b, "allowed_origins: [https://app.example.com, \"https://*.example.org\"]\n"+
		"allowed_headers: [Authorization, Content-Type]\nexposed_headers: [X-Request-ID]\nallow_credentials: true\nmax_age: 1h")
	for _, bb := range []struct{ name, method, reqMeth string }{
		{"simple", "GET", ""},
		{"preflight", "OPTIONS", "POST"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				ctx.Request.Header.SetMethod(bb.method)
				ctx.Request.Header.Set("Origin", "https://app.example.com")
				if bb.reqMeth != "" {
					ctx.Request.Header.Set("Access-Control-Request-Method", bb.reqMeth)
					ctx.Request.Header.Set("Access-Control-Request-Headers", "content-type, authorization")
				}
				reqctx.Acquire(&ctx)
				for pb.Next() {
					ctx.Response.Reset()
					p.Handle(&ctx)
					p.OnResponse(&ctx)
				}
			})
		})
	}
}
