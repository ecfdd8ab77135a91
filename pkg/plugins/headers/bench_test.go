package headers

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// allocSettings edit both directions with every operation.
const allocSettings = `
request:  { set: { X-Env: prod }, add: { X-Via: gatewayd }, remove: [X-Debug] }
response: { set: { Cache-Control: no-store }, add: { X-Served-By: gw }, remove: [Server, X-Powered-By] }
`

// BenchmarkEdits measures one request and one response edited.
func BenchmarkEdits(b *testing.B) {
	p := mustBuild(b, allocSettings)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		for pb.Next() {
			ctx.Request.Header.Reset()
			ctx.Request.Header.Set("X-Debug", "1")
			ctx.Response.Reset()
			ctx.Response.Header.Set("Server", "nginx")
			p.Handle(&ctx)
			p.OnResponse(&ctx)
		}
	})
}
