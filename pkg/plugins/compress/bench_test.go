package compress

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkOnResponse compresses an 8 KiB JSON response per encoding and
// level.
func BenchmarkOnResponse(b *testing.B) {
	body := jsonBody(8 << 10)
	for _, level := range []string{"fastest", "default"} {
		for _, enc := range []string{"gzip", "br"} {
			b.Run(level+"/"+enc, func(b *testing.B) {
				p := mustBuild(b, "level: "+level)
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				b.RunParallel(func(pb *testing.PB) {
					var ctx fasthttp.RequestCtx
					ctx.Request.Header.Set("Accept-Encoding", enc)
					for pb.Next() {
						ctx.Response.Reset()
						ctx.Response.Header.SetContentType("application/json")
						ctx.Response.SetBody(body)
						p.Handle(&ctx)
						p.OnResponse(&ctx)
					}
				})
			})
		}
	}
}
