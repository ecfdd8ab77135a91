//go:build !race

package ipfilter

import (
	"testing"

	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

func TestHandleDoesNotAllocate(t *testing.T) {
	p := mustBuild(t, "allow: [10.0.0.0/8, \"2001:db8::/32\", 192.168.0.0/16]\ndeny: [10.9.9.0/24]")
	tests := []struct {
		name   string
		giveIP string
		want   plugins.Verdict
	}{
		{name: "allowed v4", giveIP: "10.1.2.3", want: plugins.Next},
		{name: "allowed v6", giveIP: "2001:db8::1", want: plugins.Next},
		{name: "denied", giveIP: "10.9.9.9", want: plugins.Done},
		{name: "not allowed", giveIP: "203.0.113.1", want: plugins.Done},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			st := reqctx.Acquire(&ctx)
			st.ClientIP = append(st.ClientIP[:0], tt.giveIP...)
			run := func() {
				ctx.Response.Reset()
				if got := p.Handle(&ctx); got != tt.want {
					t.Fatalf("verdict %v, want %v", got, tt.want)
				}
			}
			run()
			if allocs := testing.AllocsPerRun(1000, run); allocs != 0 {
				t.Errorf("Handle allocates %.1f times per request, want 0", allocs)
			}
		})
	}
}
