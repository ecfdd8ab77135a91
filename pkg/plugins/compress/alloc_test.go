//go:build !race

package compress

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// A compressed JSON response costs no allocation once the pools are warm.
func TestOnResponseDoesNotAllocate(t *testing.T) {
	body := jsonBody(8 << 10)
	for _, enc := range []string{"gzip", "br"} {
		t.Run(enc, func(t *testing.T) {
			p := mustBuild(t, "")
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.Set("Accept-Encoding", enc)
			run := func() {
				ctx.Response.Reset()
				ctx.Response.Header.SetContentType("application/json")
				ctx.Response.Header.Set("ETag", `"abc"`)
				ctx.Response.SetBody(body)
				p.Handle(&ctx)
				p.OnResponse(&ctx)
			}
			for i := 0; i < 10; i++ {
				run()
			}
			if string(ctx.Response.Header.ContentEncoding()) != enc {
				t.Fatal("not compressed")
			}
			if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
				t.Errorf("OnResponse allocates %.1f times per response, want 0", allocs)
			}
		})
	}
}

// fasthttp's body buffer pool sizes itself from the buffers it is given
// back, after 42 000 of them: once it has, a compressed response still
// costs no allocation (the uncompressed body's buffer must go back full,
// or the pool drops the large buffers bodies are read into).
func TestOnResponseDoesNotAllocateAfterPoolCalibration(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 50 000 responses")
	}
	body := jsonBody(8 << 10)
	p := mustBuild(t, "level: fastest\nencodings: [br]")
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.Set("Accept-Encoding", "br")
	run := func() {
		ctx.Response.Reset()
		ctx.Response.Header.SetContentType("application/json")
		ctx.Response.SetBody(body)
		p.OnResponse(&ctx)
	}
	for i := 0; i < 50000; i++ {
		run()
	}
	if string(ctx.Response.Header.ContentEncoding()) != "br" {
		t.Fatal("not compressed")
	}
	if allocs := testing.AllocsPerRun(500, run); allocs != 0 {
		t.Errorf("OnResponse allocates %.1f times per response after calibration, want 0", allocs)
	}
}
