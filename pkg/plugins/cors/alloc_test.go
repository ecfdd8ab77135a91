//go:build !race

package cors

import (
	"testing"

	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

func TestDoesNotAllocate(t *testing.T) {
	p := mustBuild(t, "allowed_origins: [https://app.example.com, \"https://*.example.org\"]\n"+
		"allowed_headers: [Authorization, Content-Type]\nexposed_headers: [X-Request-ID]\nallow_credentials: true\nmax_age: 1h")
	tests := []struct {
		name        string
		giveMethod  string
		giveOrigin  string
		giveReqMeth string
		wantVerdict plugins.Verdict
	}{
		{name: "simple request", giveMethod: "GET", giveOrigin: "https://app.example.com", wantVerdict: plugins.Next},
		{name: "wildcard origin", giveMethod: "POST", giveOrigin: "https://a.b.example.org", wantVerdict: plugins.Next},
		{name: "other origin", giveMethod: "GET", giveOrigin: "https://evil.example", wantVerdict: plugins.Next},
		{name: "no origin", giveMethod: "GET", wantVerdict: plugins.Next},
		{name: "preflight", giveMethod: "OPTIONS", giveOrigin: "https://app.example.com", giveReqMeth: "POST", wantVerdict: plugins.Done},
		{name: "refused preflight", giveMethod: "OPTIONS", giveOrigin: "https://evil.example", giveReqMeth: "POST", wantVerdict: plugins.Done},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod(tt.giveMethod)
			if tt.giveOrigin != "" {
				ctx.Request.Header.Set("Origin", tt.giveOrigin)
			}
			if tt.giveReqMeth != "" {
				ctx.Request.Header.Set("Access-Control-Request-Method", tt.giveReqMeth)
				ctx.Request.Header.Set("Access-Control-Request-Headers", "content-type, authorization")
			}
			reqctx.Acquire(&ctx)
			exchange := func() {
				ctx.Response.Reset()
				if p.Handle(&ctx) != tt.wantVerdict {
					t.Fatal("unexpected verdict")
				}
				p.OnResponse(&ctx)
			}
			exchange()
			if allocs := testing.AllocsPerRun(1000, exchange); allocs != 0 {
				t.Errorf("Handle+OnResponse allocate %.1f times per request, want 0", allocs)
			}
		})
	}
}
