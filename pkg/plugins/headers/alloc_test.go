//go:build !race

package headers

import (
	"testing"

	"github.com/valyala/fasthttp"
)

func TestHandleAndOnResponseDoNotAllocate(t *testing.T) {
	p := mustBuild(t, allocSettings)
	var ctx fasthttp.RequestCtx
	exchange := func() {
		ctx.Request.Header.Reset()
		ctx.Request.Header.Set("X-Debug", "1")
		ctx.Response.Reset()
		ctx.Response.Header.Set("Server", "nginx")
		p.Handle(&ctx)
		p.OnResponse(&ctx)
	}
	exchange()
	if string(ctx.Request.Header.Peek("X-Env")) != "prod" || string(ctx.Response.Header.Peek("Cache-Control")) != "no-store" {
		t.Fatal("edits not applied")
	}
	if allocs := testing.AllocsPerRun(1000, exchange); allocs != 0 {
		t.Errorf("Handle+OnResponse allocate %.1f times per request, want 0", allocs)
	}
}
