//go:build !race

package secheaders

import (
	"testing"

	"github.com/valyala/fasthttp"
)

func TestOnResponseDoesNotAllocate(t *testing.T) {
	p := mustBuild(t, "hsts: {include_subdomains: true}\ncsp: \"default-src 'self'\"")
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.Set("X-Forwarded-Proto", "https")
	exchange := func() {
		ctx.Response.Reset()
		p.Handle(&ctx)
		p.OnResponse(&ctx)
	}
	exchange()
	if got := string(ctx.Response.Header.Peek("Strict-Transport-Security")); got == "" {
		t.Fatal("HSTS not set")
	}
	if allocs := testing.AllocsPerRun(1000, exchange); allocs != 0 {
		t.Errorf("Handle+OnResponse allocate %.1f times per request, want 0", allocs)
	}
}
